"""Reference solutions of the lists tasks in benchmarks/data/python_tasks.txt (each example is checked by
tests/test_distill_humaneval_overlap.py). Data for the benchmark, not part of llamarch."""

from collections import Counter, deque
from itertools import combinations


def group_by_initial(words: list) -> dict:
    groups = {}
    for w in words:
        if w:
            groups.setdefault(w[0].lower(), []).append(w)
    return groups


def count_by_field(records: list, field: str) -> dict:
    counts = {}
    for r in records:
        k = r.get(field)
        counts[k] = counts.get(k, 0) + 1
    return counts


def totals_by_category(pairs: list) -> dict:
    totals = {}
    for cat, amount in pairs:
        totals[cat] = totals.get(cat, 0) + amount
    return totals


def all_positions(items: list) -> dict:
    pos = {}
    for i, x in enumerate(items):
        pos.setdefault(x, []).append(i)
    return pos


def dense_rank(scores: list) -> list:
    order = sorted(set(scores), reverse=True)
    rank = {s: i + 1 for i, s in enumerate(order)}
    return [rank[s] for s in scores]


def competition_rank(scores: list) -> list:
    return [1 + sum(1 for t in scores if t > s) for s in scores]


def stable_argsort(values: list) -> list:
    return sorted(range(len(values)), key=lambda i: values[i])


def add_counts(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0) + v
    return {k: v for k, v in out.items() if v != 0}


def subtract_counts(a: dict, b: dict) -> dict:
    out = {}
    for k, v in a.items():
        r = v - b.get(k, 0)
        if r > 0:
            out[k] = r
    return out


def multiset_intersection(a: list, b: list) -> list:
    left = Counter(b)
    out = []
    for x in a:
        if left[x] > 0:
            out.append(x)
            left[x] -= 1
    return out


def in_exactly_one(a: list, b: list) -> list:
    return sorted(set(a) ^ set(b))


def unique_to_each(lists: list) -> list:
    result = []
    for i, lst in enumerate(lists):
        others = set()
        for j, other in enumerate(lists):
            if j != i:
                others.update(other)
        seen, keep = set(), []
        for x in lst:
            if x not in others and x not in seen:
                seen.add(x)
                keep.append(x)
        result.append(keep)
    return result


def jaccard_index(a: list, b: list) -> float:
    sa, sb = set(a), set(b)
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)


def can_build_from(needed: list, available: list) -> bool:
    have = Counter(available)
    return all(have[k] >= n for k, n in Counter(needed).items())


def dict_changes(old: dict, new: dict) -> dict:
    return {
        "added": sorted(k for k in new if k not in old),
        "removed": sorted(k for k in old if k not in new),
        "changed": sorted(k for k in old if k in new and old[k] != new[k]),
    }


def collect_values(dicts: list) -> dict:
    out = {}
    for d in dicts:
        for k, v in d.items():
            out.setdefault(k, []).append(v)
    return out


def invert_list_mapping(mapping: dict) -> dict:
    out = {}
    for k, values in mapping.items():
        for v in values:
            keys = out.setdefault(v, [])
            if k not in keys:
                keys.append(k)
    return out


def rename_keys(data: dict, renames: dict) -> dict:
    return {renames.get(k, k): v for k, v in data.items()}


def pivot_sum(records: list, row: str, col: str, value: str) -> dict:
    table = {}
    for r in records:
        inner = table.setdefault(r[row], {})
        inner[r[col]] = inner.get(r[col], 0) + r[value]
    return table


def unflatten_dict(flat: dict) -> dict:
    out = {}
    for key, v in flat.items():
        parts = key.split(".")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = v
    return out


def set_nested(data: dict, path: list, value: object) -> dict:
    node = data
    for p in path[:-1]:
        if not isinstance(node.get(p), dict):
            node[p] = {}
        node = node[p]
    node[path[-1]] = value
    return data


def group_runs(values: list) -> list:
    runs = []
    for v in values:
        if runs and runs[-1][-1] == v:
            runs[-1].append(v)
        else:
            runs.append([v])
    return runs


def ranges_to_text(values: list) -> str:
    nums = sorted(set(values))
    parts, i = [], 0
    while i < len(nums):
        j = i
        while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
            j += 1
        parts.append(str(nums[i]) if i == j else f"{nums[i]}-{nums[j]}")
        i = j + 1
    return ",".join(parts)


def expand_range_text(text: str) -> list:
    nums = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part[1:]:
            idx = part.index("-", 1)
            lo, hi = int(part[:idx]), int(part[idx + 1 :])
            nums.update(range(lo, hi + 1))
        else:
            nums.add(int(part))
    return sorted(nums)


def split_list_on(items: list, separator: object) -> list:
    parts = [[]]
    for x in items:
        if x == separator:
            parts.append([])
        else:
            parts[-1].append(x)
    return parts


def stepped_windows(items: list, size: int, step: int) -> list:
    return [items[i : i + size] for i in range(0, len(items) - size + 1, step)]


def shortest_window_at_least(values: list, target: int) -> int:
    best, total, left = 0, 0, 0
    for right, v in enumerate(values):
        total += v
        while total >= target:
            length = right - left + 1
            if best == 0 or length < best:
                best = length
            total -= values[left]
            left += 1
    return best


def longest_distinct_window(values: list) -> int:
    last, start, best = {}, 0, 0
    for i, v in enumerate(values):
        if v in last and last[v] >= start:
            start = last[v] + 1
        last[v] = i
        best = max(best, i - start + 1)
    return best


def longest_equal_run(values: list) -> tuple:
    best = None
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[i]:
            j += 1
        if best is None or j - i + 1 > best[1]:
            best = (values[i], j - i + 1)
        i = j + 1
    return best


def distinct_per_window(values: list, k: int) -> list:
    return [len(set(values[i : i + k])) for i in range(len(values) - k + 1)]


def count_subarrays_with_sum(values: list, target: int) -> int:
    seen = {0: 1}
    total = count = 0
    for v in values:
        total += v
        count += seen.get(total - target, 0)
        seen[total] = seen.get(total, 0) + 1
    return count


def range_sum_queries(values: list, queries: list) -> list:
    prefix = [0]
    for v in values:
        prefix.append(prefix[-1] + v)
    return [prefix[j + 1] - prefix[i] for i, j in queries]


def apply_range_increments(n: int, updates: list) -> list:
    diff = [0] * (n + 1)
    for start, end, delta in updates:
        diff[start] += delta
        diff[end + 1] -= delta
    out, run = [], 0
    for i in range(n):
        run += diff[i]
        out.append(run)
    return out


def right_leaders(values: list) -> list:
    out, best = [], None
    for v in reversed(values):
        if best is None or v > best:
            out.append(v)
            best = v
    return out[::-1]


def price_span(prices: list) -> list:
    stack, spans = [], []
    for i, p in enumerate(prices):
        while stack and prices[stack[-1]] <= p:
            stack.pop()
        spans.append(i + 1 if not stack else i - stack[-1])
        stack.append(i)
    return spans


def any_intervals_overlap(intervals: list) -> bool:
    ordered = sorted(intervals)
    return any(ordered[i + 1][0] <= ordered[i][1] for i in range(len(ordered) - 1))


def interval_intersections(a: list, b: list) -> list:
    i = j = 0
    out = []
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo <= hi:
            out.append([lo, hi])
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def free_time_slots(busy: list, start: int, end: int) -> list:
    free, cursor = [], start
    for s, e in sorted(busy):
        if s > cursor:
            free.append([cursor, min(s, end)])
        cursor = max(cursor, e)
        if cursor >= end:
            break
    if cursor < end:
        free.append([cursor, end])
    return [slot for slot in free if slot[0] < slot[1]]


def max_overlapping(intervals: list) -> int:
    events = []
    for s, e in intervals:
        events.append((s, 1))
        events.append((e, -1))
    best = cur = 0
    for _, d in sorted(events):
        cur += d
        best = max(best, cur)
    return best


def coverage_counts(intervals: list, points: list) -> list:
    return [sum(1 for s, e in intervals if s <= p <= e) for p in points]


def drop_covered_intervals(intervals: list) -> list:
    unique = sorted(set(intervals))
    return [iv for iv in unique if not any(o != iv and o[0] <= iv[0] and iv[1] <= o[1] for o in unique)]


def sort_records_by(records: list, field: str) -> list:
    return sorted(records, key=lambda r: r[field], reverse=True)


def sort_by_reference(items: list, order: list) -> list:
    pos = {}
    for i, x in enumerate(order):
        pos.setdefault(x, i)
    known = sorted((x for x in items if x in pos), key=lambda x: pos[x])
    return known + sorted(x for x in items if x not in pos)


def smallest_missing_positive(values: list) -> int:
    present = set(values)
    n = 1
    while n in present:
        n += 1
    return n


def peak_indices(values: list) -> list:
    return [i for i in range(1, len(values) - 1) if values[i] > values[i - 1] and values[i] > values[i + 1]]


def search_rotated(values: list, target: int) -> int:
    lo, hi = 0, len(values) - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        if values[mid] == target:
            return mid
        if values[lo] <= values[mid]:
            if values[lo] <= target < values[mid]:
                hi = mid - 1
            else:
                lo = mid + 1
        else:
            if values[mid] < target <= values[hi]:
                lo = mid + 1
            else:
                hi = mid - 1
    return -1


def smaller_to_the_right(values: list) -> list:
    return [sum(1 for w in values[i + 1 :] if w < v) for i, v in enumerate(values)]


def three_way_partition(values: list, pivot: int) -> list:
    return [v for v in values if v < pivot] + [v for v in values if v == pivot] + [v for v in values if v > pivot]


def place_at_indices(items: list, indices: list) -> list:
    out = [None] * len(items)
    for item, idx in zip(items, indices):
        out[idx] = item
    return out


def permutation_cycles(perm: list) -> list:
    seen, cycles = set(), []
    for start in range(len(perm)):
        if start in seen:
            continue
        cycle, i = [], start
        while i not in seen:
            seen.add(i)
            cycle.append(i)
            i = perm[i]
        cycles.append(cycle)
    return cycles


def next_arrangement(values: list) -> list:
    a = list(values)
    i = len(a) - 2
    while i >= 0 and a[i] >= a[i + 1]:
        i -= 1
    if i < 0:
        return sorted(a)
    j = len(a) - 1
    while a[j] <= a[i]:
        j -= 1
    a[i], a[j] = a[j], a[i]
    a[i + 1 :] = reversed(a[i + 1 :])
    return a


def best_scores_ranking(results: list) -> list:
    best = {}
    for name, score in results:
        if name not in best or score > best[name]:
            best[name] = score
    return sorted(best, key=lambda n: (-best[n], n))


def life_step(grid: list) -> list:
    rows, cols = len(grid), len(grid[0]) if grid else 0
    out = []
    for r in range(rows):
        row = []
        for c in range(cols):
            n = sum(
                grid[rr][cc]
                for rr in range(r - 1, r + 2)
                for cc in range(c - 1, c + 2)
                if (rr, cc) != (r, c) and 0 <= rr < rows and 0 <= cc < cols
            )
            row.append(1 if n == 3 or (grid[r][c] == 1 and n == 2) else 0)
        out.append(row)
    return out


def flood_fill(grid: list, row: int, col: int, color: int) -> list:
    out = [list(r) for r in grid]
    old = out[row][col]
    if old == color:
        return out
    stack = [(row, col)]
    while stack:
        r, c = stack.pop()
        if 0 <= r < len(out) and 0 <= c < len(out[r]) and out[r][c] == old:
            out[r][c] = color
            stack.extend([(r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)])
    return out


def island_perimeter(grid: list) -> int:
    total = 0
    for r, row in enumerate(grid):
        for c, v in enumerate(row):
            if v == 1:
                for rr, cc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
                    if not (0 <= rr < len(grid) and 0 <= cc < len(grid[rr]) and grid[rr][cc] == 1):
                        total += 1
    return total


def column_totals(rows: list) -> list:
    width = max((len(r) for r in rows), default=0)
    totals = [0] * width
    for r in rows:
        for i, v in enumerate(r):
            totals[i] += v
    return totals


def saddle_points(matrix: list) -> list:
    out = []
    for r, row in enumerate(matrix):
        for c, v in enumerate(row):
            if v == max(row) and v == min(m[c] for m in matrix):
                out.append((r, c))
    return out


def anti_diagonals(matrix: list) -> list:
    if not matrix:
        return []
    rows, cols = len(matrix), len(matrix[0])
    return [[matrix[r][s - r] for r in range(rows) if 0 <= s - r < cols] for s in range(rows + cols - 1)]


def is_toeplitz(matrix: list) -> bool:
    return all(matrix[r][c] == matrix[r - 1][c - 1] for r in range(1, len(matrix)) for c in range(1, len(matrix[r])))


def reshape_matrix(matrix: list, rows: int, cols: int) -> list:
    flat = [v for row in matrix for v in row]
    if len(flat) != rows * cols:
        return matrix
    return [flat[i * cols : (i + 1) * cols] for i in range(rows)]


def region_sum(matrix: list, top: int, left: int, bottom: int, right: int) -> int:
    return sum(matrix[r][c] for r in range(top, bottom + 1) for c in range(left, right + 1))


def grid_path_count(grid: list) -> int:
    rows, cols = len(grid), len(grid[0])
    ways = [[0] * cols for _ in range(rows)]
    for r in range(rows):
        for c in range(cols):
            if grid[r][c] == 1:
                continue
            if r == 0 and c == 0:
                ways[r][c] = 1
            else:
                ways[r][c] = (ways[r - 1][c] if r else 0) + (ways[r][c - 1] if c else 0)
    return ways[-1][-1]


def min_path_cost(grid: list) -> int:
    rows, cols = len(grid), len(grid[0])
    cost = [[0] * cols for _ in range(rows)]
    for r in range(rows):
        for c in range(cols):
            if r == 0 and c == 0:
                best = 0
            elif r == 0:
                best = cost[r][c - 1]
            elif c == 0:
                best = cost[r - 1][c]
            else:
                best = min(cost[r - 1][c], cost[r][c - 1])
            cost[r][c] = best + grid[r][c]
    return cost[-1][-1]


def maze_steps(grid: list) -> int:
    rows, cols = len(grid), len(grid[0])
    if grid[0][0] == "#" or grid[-1][-1] == "#":
        return -1
    dist = {(0, 0): 0}
    queue = deque([(0, 0)])
    while queue:
        r, c = queue.popleft()
        if (r, c) == (rows - 1, cols - 1):
            return dist[(r, c)]
        for rr, cc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
            if 0 <= rr < rows and 0 <= cc < cols and grid[rr][cc] == "." and (rr, cc) not in dist:
                dist[(rr, cc)] = dist[(r, c)] + 1
                queue.append((rr, cc))
    return -1


def zero_out_lines(matrix: list) -> list:
    zr = {r for r, row in enumerate(matrix) for v in row if v == 0}
    zc = {c for row in matrix for c, v in enumerate(row) if v == 0}
    return [[0 if r in zr or c in zc else v for c, v in enumerate(row)] for r, row in enumerate(matrix)]


def tic_tac_toe_winner(board: list) -> str:
    lines = [board[r] for r in range(3)]
    lines += ["".join(board[r][c] for r in range(3)) for c in range(3)]
    lines.append("".join(board[i][i] for i in range(3)))
    lines.append("".join(board[i][2 - i] for i in range(3)))
    for p in "XO":
        if p * 3 in lines:
            return p
    return ""


def is_latin_square(grid: list) -> bool:
    n = len(grid)
    want = set(range(1, n + 1))
    return all(len(row) == n and set(row) == want for row in grid) and all(
        {row[c] for row in grid} == want for c in range(n)
    )


def mine_counts(board: list) -> list:
    out = []
    for r, row in enumerate(board):
        line = ""
        for c, ch in enumerate(row):
            if ch == "*":
                line += "*"
            else:
                n = sum(
                    1
                    for rr in range(r - 1, r + 2)
                    for cc in range(c - 1, c + 2)
                    if 0 <= rr < len(board) and 0 <= cc < len(board[rr]) and board[rr][cc] == "*"
                )
                line += str(n)
        out.append(line)
    return out


def block_sums(matrix: list, k: int) -> list:
    return [
        [sum(matrix[r][c] for r in range(br, br + k) for c in range(bc, bc + k)) for bc in range(0, len(matrix[0]), k)]
        for br in range(0, len(matrix), k)
    ]


def from_sparse(cells: dict, rows: int, cols: int) -> list:
    out = [[0] * cols for _ in range(rows)]
    for (r, c), v in cells.items():
        if 0 <= r < rows and 0 <= c < cols:
            out[r][c] = v
    return out


def knight_targets(square: str) -> list:
    f, r = ord(square[0]) - ord("a"), int(square[1]) - 1
    out = []
    for df, dr in ((1, 2), (2, 1), (2, -1), (1, -2), (-1, -2), (-2, -1), (-2, 1), (-1, 2)):
        nf, nr = f + df, r + dr
        if 0 <= nf < 8 and 0 <= nr < 8:
            out.append(chr(ord("a") + nf) + str(nr + 1))
    return sorted(out)


def walk_grid(grid: list, start: tuple, moves: str) -> tuple:
    r, c = start
    delta = {"U": (-1, 0), "D": (1, 0), "L": (0, -1), "R": (0, 1)}
    for m in moves:
        dr, dc = delta[m]
        nr, nc = r + dr, c + dc
        if 0 <= nr < len(grid) and 0 <= nc < len(grid[nr]) and grid[nr][nc] != "#":
            r, c = nr, nc
    return (r, c)


def grid_has_word(grid: list, word: str) -> bool:
    def search(r, c, i, used):
        if i == len(word):
            return True
        if not (0 <= r < len(grid) and 0 <= c < len(grid[r])) or (r, c) in used or grid[r][c] != word[i]:
            return False
        used.add((r, c))
        found = any(search(r + dr, c + dc, i + 1, used) for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)))
        used.discard((r, c))
        return found

    if not word:
        return True
    return any(search(r, c, 0, set()) for r in range(len(grid)) for c in range(len(grid[r])))


def undo_redo_text(operations: list) -> str:
    done, undone = [], []
    for op in operations:
        if op[0] == "type":
            done.append(op[1])
            undone.clear()
        elif op[0] == "undo" and done:
            undone.append(done.pop())
        elif op[0] == "redo" and undone:
            done.append(undone.pop())
    return "".join(done)


def browser_history(operations: list) -> str:
    pages, pos = ["home"], 0
    for op in operations:
        if op[0] == "visit":
            pages = pages[: pos + 1] + [op[1]]
            pos += 1
        elif op[0] == "back":
            pos = max(0, pos - op[1])
        elif op[0] == "forward":
            pos = min(len(pages) - 1, pos + op[1])
    return pages[pos]


def canonical_path(path: str) -> str:
    parts = []
    for p in path.split("/"):
        if p == "..":
            if parts:
                parts.pop()
        elif p and p != ".":
            parts.append(p)
    return "/" + "/".join(parts)


def asteroid_collisions(asteroids: list) -> list:
    stack = []
    for a in asteroids:
        alive = True
        while alive and a < 0 and stack and stack[-1] > 0:
            if stack[-1] < -a:
                stack.pop()
            elif stack[-1] == -a:
                stack.pop()
                alive = False
            else:
                alive = False
        if alive:
            stack.append(a)
    return stack


def cancel_adjacent_pairs(items: list) -> list:
    stack = []
    for x in items:
        if stack and stack[-1] == x:
            stack.pop()
        else:
            stack.append(x)
    return stack


def elimination_order(names: list, k: int) -> list:
    circle, out, i = list(names), [], 0
    while circle:
        i = (i + k - 1) % len(circle)
        out.append(circle.pop(i))
    return out


def min_stack_queries(operations: list) -> list:
    stack, answers = [], []
    for op in operations:
        if op[0] == "push":
            stack.append(op[1] if not stack else min(op[1], stack[-1]))
        elif op[0] == "pop":
            if stack:
                stack.pop()
        elif op[0] == "min":
            answers.append(stack[-1] if stack else None)
    return answers


def round_robin_finish(jobs: dict, quantum: int) -> list:
    queue = deque(jobs.items())
    done = []
    while queue:
        name, left = queue.popleft()
        left -= quantum
        if left <= 0:
            done.append(name)
        else:
            queue.append((name, left))
    return done


def ticket_wait_time(tickets: list, k: int) -> int:
    queue = deque((i, t) for i, t in enumerate(tickets))
    seconds = 0
    while True:
        i, t = queue.popleft()
        seconds += 1
        t -= 1
        if t == 0:
            if i == k:
                return seconds
        else:
            queue.append((i, t))


def deque_simulation(operations: list) -> list:
    d = deque()
    for op in operations:
        if op[0] == "push_front":
            d.appendleft(op[1])
        elif op[0] == "push_back":
            d.append(op[1])
        elif op[0] == "pop_front" and d:
            d.popleft()
        elif op[0] == "pop_back" and d:
            d.pop()
    return list(d)


def valid_stack_sequence(pushed: list, popped: list) -> bool:
    stack, j = [], 0
    for x in pushed:
        stack.append(x)
        while stack and j < len(popped) and stack[-1] == popped[j]:
            stack.pop()
            j += 1
    return j == len(popped) and not stack


def columns_to_rows(data: dict) -> list:
    n = min((len(v) for v in data.values()), default=0)
    return [{k: v[i] for k, v in data.items()} for i in range(n)]


def rows_to_columns(records: list) -> dict:
    keys = []
    for r in records:
        for k in r:
            if k not in keys:
                keys.append(k)
    return {k: [r.get(k) for r in records] for k in keys}


def index_by_field(records: list, field: str) -> dict:
    out = {}
    for r in records:
        if field in r and r[field] not in out:
            out[r[field]] = r
    return out


def inner_join(left: list, right: list, key: str) -> list:
    out = []
    for a in left:
        for b in right:
            if key in a and key in b and a[key] == b[key]:
                merged = dict(a)
                merged.update(b)
                out.append(merged)
    return out


def all_subsets(items: list) -> list:
    return [list(c) for size in range(len(items) + 1) for c in combinations(items, size)]


def pack_by_limit(values: list, limit: int) -> list:
    groups, total = [], 0
    for v in values:
        if groups and total + v <= limit:
            groups[-1].append(v)
            total += v
        else:
            groups.append([v])
            total = v
    return groups


def split_evenly(items: list, parts: int) -> list:
    size, extra = divmod(len(items), parts)
    out, start = [], 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        out.append(items[start:end])
        start = end
    return out


def find_sublist(haystack: list, needle: list) -> int:
    for i in range(len(haystack) - len(needle) + 1):
        if haystack[i : i + len(needle)] == needle:
            return i
    return -1


def frequent_beyond(values: list, k: int) -> list:
    counts = Counter(values)
    out = []
    for v in values:
        if counts[v] * k > len(values) and v not in out:
            out.append(v)
    return out


def deal_round_robin(items: list, hands: int) -> list:
    return [items[i::hands] for i in range(hands)]


def can_reach_end(jumps: list) -> bool:
    reach = 0
    for i, j in enumerate(jumps):
        if i > reach:
            return False
        reach = max(reach, i + j)
    return True


def max_non_adjacent_sum(values: list) -> int:
    take, skip = 0, 0
    for v in values:
        take, skip = skip + v, max(take, skip)
    return max(take, skip, 0)


def longest_mountain(values: list) -> int:
    best, n, i = 0, len(values), 1
    while i < n:
        up = down = 0
        while i < n and values[i] > values[i - 1]:
            up += 1
            i += 1
        while i < n and values[i] < values[i - 1]:
            down += 1
            i += 1
        if up and down:
            best = max(best, up + down + 1)
        if not up and not down:
            i += 1
    return best


def depth_weighted_sum(items: list) -> int:
    def walk(lst, depth):
        return sum(walk(x, depth + 1) if isinstance(x, list) else x * depth for x in lst)

    return walk(items, 1)


def borda_ranking(ballots: list) -> list:
    points = {}
    for ballot in ballots:
        n = len(ballot)
        for pos, name in enumerate(ballot):
            points[name] = points.get(name, 0) + n - 1 - pos
    return sorted(points, key=lambda name: (-points[name], name))


def count_inversions(values: list) -> int:
    return sum(1 for i in range(len(values)) for j in range(i + 1, len(values)) if values[i] > values[j])


def nearest_value(values: list, target: int) -> int:
    if not values:
        return None
    return min(values, key=lambda v: (abs(v - target), v))


def bucket_values(values: list, width: int) -> dict:
    buckets = {}
    for v in values:
        buckets.setdefault(v // width * width, []).append(v)
    return {k: buckets[k] for k in sorted(buckets)}


def local_minima_cells(grid: list) -> list:
    out = []
    for r, row in enumerate(grid):
        for c, v in enumerate(row):
            around = [
                grid[rr][cc]
                for rr, cc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1))
                if 0 <= rr < len(grid) and 0 <= cc < len(grid[rr])
            ]
            if all(v < a for a in around):
                out.append((r, c))
    return out


def snake_order(matrix: list) -> list:
    out = []
    for r, row in enumerate(matrix):
        out.extend(row if r % 2 == 0 else row[::-1])
    return out


def most_common_adjacent_pair(items: list) -> tuple:
    counts, first = {}, []
    for pair in zip(items, items[1:]):
        if pair not in counts:
            first.append(pair)
        counts[pair] = counts.get(pair, 0) + 1
    if not first:
        return None
    return max(first, key=lambda p: (counts[p], -first.index(p)))


def rotting_time(grid: list) -> int:
    g = [list(r) for r in grid]
    queue = deque((r, c) for r, row in enumerate(g) for c, v in enumerate(row) if v == 2)
    fresh = sum(v == 1 for row in g for v in row)
    minutes = 0
    while queue and fresh:
        for _ in range(len(queue)):
            r, c = queue.popleft()
            for rr, cc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
                if 0 <= rr < len(g) and 0 <= cc < len(g[rr]) and g[rr][cc] == 1:
                    g[rr][cc] = 2
                    fresh -= 1
                    queue.append((rr, cc))
        minutes += 1
    return -1 if fresh else minutes


def drop_tiles(grid: list) -> list:
    rows = len(grid)
    cols = [[grid[r][c] for r in range(rows) if grid[r][c] != "."] for c in range(len(grid[0]))] if grid else []
    cols = [["."] * (rows - len(col)) + col for col in cols]
    return ["".join(col[r] for col in cols) for r in range(rows)]


def shift_grid(grid: list, k: int) -> list:
    flat = [v for row in grid for v in row]
    if not flat:
        return [list(r) for r in grid]
    k %= len(flat)
    flat = flat[-k:] + flat[:-k] if k else flat
    cols = len(grid[0])
    return [flat[i : i + cols] for i in range(0, len(flat), cols)]


def alternate_signs(values: list) -> list:
    pos = [v for v in values if v >= 0]
    neg = [v for v in values if v < 0]
    out = []
    for i in range(max(len(pos), len(neg))):
        if i < len(pos):
            out.append(pos[i])
        if i < len(neg):
            out.append(neg[i])
    return out


def first_repeated(items: list) -> object:
    seen = set()
    for x in items:
        if x in seen:
            return x
        seen.add(x)
    return None
