"""Reference solutions of the numbers tasks in benchmarks/data/python_tasks.txt (each example is checked by
tests/test_distill_humaneval_overlap.py). Data for the benchmark, not part of llamarch."""

from collections import Counter, deque
from math import gcd, isqrt


def factorial_trailing_zeros(n: int) -> int:
    count, power = 0, 5
    while power <= n:
        count += n // power
        power *= 5
    return count


def divisor_count(n: int) -> int:
    count, d = 0, 1
    while d * d <= n:
        if n % d == 0:
            count += 1 if d * d == n else 2
        d += 1
    return count


def modular_inverse(a: int, m: int) -> int:
    old_r, r, old_s, s = a % m, m, 1, 0
    while r:
        q = old_r // r
        old_r, r = r, old_r - q * r
        old_s, s = s, old_s - q * s
    if old_r != 1:
        return -1
    return old_s % m


def kaprekar_steps(n: int) -> int:
    steps = 0
    while n != 6174:
        digits = sorted(str(n).zfill(4))
        n = int("".join(reversed(digits))) - int("".join(digits))
        steps += 1
    return steps


def nearest_multiple(n: int, m: int) -> int:
    low = (n // m) * m
    high = low + m
    return low if n - low < high - n else high


def count_digit_occurrences(n: int, d: int) -> int:
    return sum(str(i).count(str(d)) for i in range(1, n + 1))


def sum_of_multiples(limit: int, factors: list) -> int:
    return sum(x for x in range(1, limit) if any(x % f == 0 for f in factors))


def egyptian_fraction(numerator: int, denominator: int) -> list:
    result = []
    while numerator:
        d = -(-denominator // numerator)
        result.append(d)
        numerator, denominator = numerator * d - denominator, denominator * d
        g = gcd(numerator, denominator)
        numerator, denominator = numerator // g, denominator // g
    return result


def add_fractions(a: tuple, b: tuple) -> tuple:
    num = a[0] * b[1] + b[0] * a[1]
    den = a[1] * b[1]
    if den < 0:
        num, den = -num, -den
    g = gcd(num, den)
    return (num // g, den // g)


def repeating_decimal(numerator: int, denominator: int) -> str:
    whole, rem = divmod(numerator, denominator)
    if rem == 0:
        return str(whole)
    digits, seen = [], {}
    while rem and rem not in seen:
        seen[rem] = len(digits)
        rem *= 10
        digits.append(str(rem // denominator))
        rem %= denominator
    if rem == 0:
        return f"{whole}." + "".join(digits)
    start = seen[rem]
    return f"{whole}." + "".join(digits[:start]) + "(" + "".join(digits[start:]) + ")"


def continued_fraction(numerator: int, denominator: int) -> list:
    terms = []
    while denominator:
        q, r = divmod(numerator, denominator)
        terms.append(q)
        numerator, denominator = denominator, r
    return terms


def count_carries(a: int, b: int) -> int:
    carry = count = 0
    while a or b:
        carry = 1 if a % 10 + b % 10 + carry >= 10 else 0
        count += carry
        a, b = a // 10, b // 10
    return count


def multiply_decimal_strings(a: str, b: str) -> str:
    result = [0] * (len(a) + len(b))
    for i in range(len(a) - 1, -1, -1):
        for j in range(len(b) - 1, -1, -1):
            total = result[i + j + 1] + (ord(a[i]) - 48) * (ord(b[j]) - 48)
            result[i + j + 1] = total % 10
            result[i + j] += total // 10
    text = "".join(map(str, result)).lstrip("0")
    return text or "0"


def round_significant(n: int, digits: int) -> int:
    drop = max(len(str(n)) - digits, 0)
    unit = 10**drop
    return (n + unit // 2) // unit * unit if drop else n


def consecutive_sum_ways(n: int) -> int:
    ways, length = 0, 1
    while length * (length + 1) // 2 <= n:
        if (n - length * (length - 1) // 2) % length == 0:
            ways += 1
        length += 1
    return ways


def two_squares(n: int) -> list:
    pairs = []
    a = 0
    while 2 * a * a <= n:
        b = isqrt(n - a * a)
        if b * b == n - a * a:
            pairs.append((a, b))
        a += 1
    return pairs


def pythagorean_triples(limit: int) -> list:
    triples = []
    for c in range(1, limit + 1):
        for a in range(1, c):
            b = isqrt(c * c - a * a)
            if a < b and a * a + b * b == c * c:
                triples.append((a, b, c))
    return triples


def count_coprimes(n: int) -> int:
    return sum(1 for k in range(1, n + 1) if gcd(k, n) == 1)


def recaman_sequence(count: int) -> list:
    terms, seen = [], set()
    for n in range(count):
        if n == 0:
            value = 0
        else:
            value = terms[-1] - n
            if value <= 0 or value in seen:
                value = terms[-1] + n
        terms.append(value)
        seen.add(value)
    return terms


def van_eck_sequence(count: int) -> list:
    terms, last_seen = [], {}
    value = 0
    for i in range(count):
        terms.append(value)
        nxt = i - last_seen[value] if value in last_seen else 0
        last_seen[value] = i
        value = nxt
    return terms


def amicable_pairs(limit: int) -> list:
    def proper_sum(n):
        total = 1 if n > 1 else 0
        d = 2
        while d * d <= n:
            if n % d == 0:
                total += d + (n // d if d * d != n else 0)
            d += 1
        return total

    pairs = []
    for a in range(2, limit + 1):
        b = proper_sum(a)
        if a < b <= limit and proper_sum(b) == a:
            pairs.append((a, b))
    return pairs


def champernowne_digit(n: int) -> int:
    length, count, start = 1, 9, 1
    while n > length * count:
        n -= length * count
        length, count, start = length + 1, count * 10, start * 10
    number = start + (n - 1) // length
    return int(str(number)[(n - 1) % length])


def nth_ugly_number(n: int) -> int:
    ugly = [1]
    i2 = i3 = i5 = 0
    while len(ugly) < n:
        nxt = min(ugly[i2] * 2, ugly[i3] * 3, ugly[i5] * 5)
        ugly.append(nxt)
        if nxt == ugly[i2] * 2:
            i2 += 1
        if nxt == ugly[i3] * 3:
            i3 += 1
        if nxt == ugly[i5] * 5:
            i5 += 1
    return ugly[n - 1]


def clock_hand_angle(hour: int, minute: int) -> float:
    hour_angle = (hour % 12) * 30 + minute * 0.5
    minute_angle = minute * 6
    diff = abs(hour_angle - minute_angle) % 360
    return float(min(diff, 360 - diff))


def gray_code(bits: int) -> list:
    return [i ^ (i >> 1) for i in range(2**bits)]


def reverse_bits(n: int, width: int) -> int:
    result = 0
    for _ in range(width):
        result = (result << 1) | (n & 1)
        n >>= 1
    return result


def set_bit_positions(n: int) -> list:
    return [i for i in range(n.bit_length()) if n >> i & 1]


def bit_difference_count(a: int, b: int) -> int:
    return bin(a ^ b).count("1")


def next_power_of_two(n: int) -> int:
    power = 1
    while power < n:
        power *= 2
    return power


def swap_bit_pairs(n: int) -> int:
    result, i = 0, 0
    while n >> i:
        low, high = n >> i & 1, n >> (i + 1) & 1
        result |= (high << i) | (low << (i + 1))
        i += 2
    return result


def longest_one_bits_run(n: int) -> int:
    return max((len(run) for run in bin(n)[2:].split("0")), default=0)


def binary_gap(n: int) -> int:
    return max(len(run) for run in bin(n)[2:].strip("0").split("1"))


def morton_code(x: int, y: int) -> int:
    result, i = 0, 0
    while x >> i or y >> i:
        result |= (x >> i & 1) << (2 * i) | (y >> i & 1) << (2 * i + 1)
        i += 1
    return result


def add_binary_strings(a: str, b: str) -> str:
    result, carry = [], 0
    i, j = len(a) - 1, len(b) - 1
    while i >= 0 or j >= 0 or carry:
        total = carry + (int(a[i]) if i >= 0 else 0) + (int(b[j]) if j >= 0 else 0)
        result.append(str(total % 2))
        carry = total // 2
        i, j = i - 1, j - 1
    return "".join(reversed(result)).lstrip("0") or "0"


def twos_complement(n: int, width: int) -> str:
    return format(n % (1 << width), "b").zfill(width)


def negabinary(n: int) -> str:
    if n == 0:
        return "0"
    digits = []
    while n:
        n, r = divmod(n, -2)
        if r < 0:
            n, r = n + 1, r + 2
        digits.append(str(r))
    return "".join(reversed(digits))


def balanced_ternary(n: int) -> str:
    if n == 0:
        return "0"
    digits = []
    while n:
        r = n % 3
        if r == 2:
            digits.append("-")
            n = (n + 1) // 3
        else:
            digits.append("+" if r == 1 else "0")
            n = (n - r) // 3
    return "".join(reversed(digits))


def spreadsheet_column_name(n: int) -> str:
    letters = []
    while n:
        n, r = divmod(n - 1, 26)
        letters.append(chr(65 + r))
    return "".join(reversed(letters))


def factoradic(n: int) -> list:
    digits, base = [], 1
    while True:
        digits.append(n % base)
        n //= base
        base += 1
        if n == 0:
            break
    return list(reversed(digits))


def bcd_encode(n: int) -> str:
    return " ".join(format(int(d), "04b") for d in str(n))


def thue_morse(length: int) -> str:
    return "".join(str(bin(i).count("1") % 2) for i in range(length))


def nth_permutation(items: list, k: int) -> list:
    pool = sorted(items)
    result = []
    fact = 1
    for i in range(2, len(pool)):
        fact *= i
    for i in range(len(pool) - 1, -1, -1):
        index, k = divmod(k, fact)
        result.append(pool.pop(index))
        if i:
            fact //= i
    return result


def distinct_arrangements(word: str) -> int:
    def factorial(n):
        out = 1
        for i in range(2, n + 1):
            out *= i
        return out

    total = factorial(len(word))
    for count in Counter(word).values():
        total //= factorial(count)
    return total


def k_combinations(n: int, k: int) -> list:
    result = []

    def build(start, chosen):
        if len(chosen) == k:
            result.append(chosen[:])
            return
        for x in range(start, n + 1):
            chosen.append(x)
            build(x + 1, chosen)
            chosen.pop()

    build(1, [])
    return result


def integer_partitions(n: int) -> list:
    result = []

    def build(remaining, largest, parts):
        if remaining == 0:
            result.append(parts[:])
            return
        for part in range(min(remaining, largest), 0, -1):
            parts.append(part)
            build(remaining - part, part, parts)
            parts.pop()

    build(n, n, [])
    return result


def derangement_count(n: int) -> int:
    a, b = 1, 0
    if n == 0:
        return 1
    for i in range(2, n + 1):
        a, b = b, (i - 1) * (a + b)
    return b


def catalan_number(n: int) -> int:
    c = 1
    for i in range(n):
        c = c * 2 * (2 * i + 1) // (i + 2)
    return c


def stirling_second(n: int, k: int) -> int:
    table = [[0] * (k + 1) for _ in range(n + 1)]
    table[0][0] = 1
    for i in range(1, n + 1):
        for j in range(1, k + 1):
            table[i][j] = j * table[i - 1][j] + table[i - 1][j - 1]
    return table[n][k]


def dice_sum_ways(dice: int, faces: int, target: int) -> int:
    ways = {0: 1}
    for _ in range(dice):
        nxt = {}
        for total, count in ways.items():
            for face in range(1, faces + 1):
                nxt[total + face] = nxt.get(total + face, 0) + count
        ways = nxt
    return ways.get(target, 0)


def subset_sums(values: list) -> list:
    sums = {0}
    for v in values:
        sums |= {s + v for s in sums}
    return sorted(sums)


def permutations_with_inversions(n: int, k: int) -> int:
    counts = [1] + [0] * k
    for size in range(2, n + 1):
        nxt = [0] * (k + 1)
        for total in range(k + 1):
            nxt[total] = sum(counts[total - extra] for extra in range(min(size - 1, total) + 1))
        counts = nxt
    return counts[k]


def permutation_rank(values: list) -> int:
    rank = 0
    n = len(values)
    fact = [1] * (n + 1)
    for i in range(1, n + 1):
        fact[i] = fact[i - 1] * i
    for i, v in enumerate(values):
        smaller = sum(1 for w in values[i + 1 :] if w < v)
        rank += smaller * fact[n - 1 - i]
    return rank


def n_queens_count(n: int) -> int:
    def place(row, cols, diag1, diag2):
        if row == n:
            return 1
        total = 0
        for c in range(n):
            if c not in cols and row - c not in diag1 and row + c not in diag2:
                total += place(row + 1, cols | {c}, diag1 | {row - c}, diag2 | {row + c})
        return total

    return place(0, set(), set(), set())


def largest_time_from_digits(digits: list) -> str:
    from itertools import permutations

    best = ""
    for h1, h2, m1, m2 in permutations(digits):
        hours, minutes = h1 * 10 + h2, m1 * 10 + m2
        if hours < 24 and minutes < 60:
            best = max(best, f"{hours:02d}:{minutes:02d}")
    return best


def count_triangles(lengths: list) -> int:
    count = 0
    n = len(lengths)
    for i in range(n):
        for j in range(i + 1, n):
            for k in range(j + 1, n):
                a, b, c = sorted((lengths[i], lengths[j], lengths[k]))
                if a + b > c:
                    count += 1
    return count


def rectangles_in_grid(width: int, height: int) -> int:
    return (width * (width + 1) // 2) * (height * (height + 1) // 2)


def delannoy_paths(m: int, n: int) -> int:
    ways = [[1] * (n + 1) for _ in range(m + 1)]
    for i in range(1, m + 1):
        for j in range(1, n + 1):
            ways[i][j] = ways[i - 1][j] + ways[i][j - 1] + ways[i - 1][j - 1]
    return ways[m][n]


def max_rightward_path(grid: list) -> int:
    rows, cols = len(grid), len(grid[0])
    best = [grid[r][0] for r in range(rows)]
    for c in range(1, cols):
        best = [grid[r][c] + max(best[rr] for rr in (r - 1, r, r + 1) if 0 <= rr < rows) for r in range(rows)]
    return max(best)


def can_partition_equal(values: list) -> bool:
    total = sum(values)
    if total % 2:
        return False
    reachable = {0}
    for v in values:
        reachable |= {s + v for s in reachable}
    return total // 2 in reachable


def count_subsets_with_sum(values: list, target: int) -> int:
    ways = [1] + [0] * target
    for v in values:
        for s in range(target, v - 1, -1):
            ways[s] += ways[s - v]
    return ways[target]


def longest_arithmetic_subsequence(values: list) -> int:
    if len(values) < 2:
        return len(values)
    best = 2
    ends = [{} for _ in values]
    for j in range(len(values)):
        for i in range(j):
            diff = values[j] - values[i]
            ends[j][diff] = max(ends[j].get(diff, 1), ends[i].get(diff, 1) + 1)
            best = max(best, ends[j][diff])
    return best


def decode_ways(digits: str) -> int:
    prev, cur = 1, 1 if digits and digits[0] != "0" else 0
    for i in range(1, len(digits)):
        nxt = 0
        if digits[i] != "0":
            nxt += cur
        if 10 <= int(digits[i - 1 : i + 1]) <= 26:
            nxt += prev
        prev, cur = cur, nxt
    return cur if digits else 0


def count_distinct_subsequences(text: str, pattern: str) -> int:
    ways = [1] + [0] * len(pattern)
    for ch in text:
        for j in range(len(pattern), 0, -1):
            if pattern[j - 1] == ch:
                ways[j] += ways[j - 1]
    return ways[len(pattern)]


def longest_zigzag_subsequence(values: list) -> int:
    if not values:
        return 0
    up = down = 1
    for i in range(1, len(values)):
        if values[i] > values[i - 1]:
            up = down + 1
        elif values[i] < values[i - 1]:
            down = up + 1
    return max(up, down)


def max_product_subarray(values: list) -> int:
    best = high = low = values[0]
    for v in values[1:]:
        candidates = (v, high * v, low * v)
        high, low = max(candidates), min(candidates)
        best = max(best, high)
    return best


def rod_cutting(prices: list, length: int) -> int:
    best = [0] * (length + 1)
    for n in range(1, length + 1):
        best[n] = max(prices[i] + best[n - i - 1] for i in range(min(n, len(prices))))
    return best[length]


def min_squares_sum(n: int) -> int:
    best = [0] + [n] * n
    for total in range(1, n + 1):
        k = 1
        while k * k <= total:
            best[total] = min(best[total], best[total - k * k] + 1)
            k += 1
    return best[n]


def min_jumps(steps: list) -> int:
    jumps, end, farthest = 0, 0, 0
    for i in range(len(steps) - 1):
        if i > farthest:
            return -1
        farthest = max(farthest, i + steps[i])
        if i == end:
            jumps += 1
            end = farthest
    return jumps if end >= len(steps) - 1 else -1


def paint_houses(costs: list) -> int:
    best = [0, 0, 0]
    for row in costs:
        best = [row[c] + min(best[d] for d in range(3) if d != c) for c in range(3)]
    return min(best)


def triangle_min_path(triangle: list) -> int:
    best = list(triangle[-1])
    for row in reversed(triangle[:-1]):
        best = [v + min(best[i], best[i + 1]) for i, v in enumerate(row)]
    return best[0]


def largest_square_of_ones(grid: list) -> int:
    best = 0
    size = [[0] * (len(grid[0]) + 1) for _ in range(len(grid) + 1)]
    for r, row in enumerate(grid):
        for c, cell in enumerate(row):
            if cell == 1:
                size[r + 1][c + 1] = 1 + min(size[r][c], size[r][c + 1], size[r + 1][c])
                best = max(best, size[r + 1][c + 1])
    return best


def min_partition_difference(values: list) -> int:
    total = sum(values)
    reachable = {0}
    for v in values:
        reachable |= {s + v for s in reachable}
    return min(abs(total - 2 * s) for s in reachable)


def stone_game_first_wins(stones: int, moves: list) -> bool:
    win = [False] * (stones + 1)
    for n in range(1, stones + 1):
        win[n] = any(m <= n and not win[n - m] for m in moves)
    return win[stones]


def max_non_overlapping_meetings(meetings: list) -> int:
    count, last_end = 0, None
    for start, end in sorted(meetings, key=lambda m: m[1]):
        if last_end is None or start >= last_end:
            count += 1
            last_end = end
    return count


def min_piercing_points(intervals: list) -> int:
    count, last = 0, None
    for start, end in sorted(intervals, key=lambda iv: iv[1]):
        if last is None or start > last:
            count += 1
            last = end
    return count


def task_scheduler_time(tasks: list, cooldown: int) -> int:
    counts = Counter(tasks)
    if not counts:
        return 0
    most = max(counts.values())
    with_most = sum(1 for c in counts.values() if c == most)
    return max(len(tasks), (most - 1) * (cooldown + 1) + with_most)


def job_sequencing_profit(jobs: list) -> int:
    slots = {}
    total = 0
    for deadline, profit in sorted(jobs, key=lambda j: -j[1]):
        for t in range(deadline, 0, -1):
            if t not in slots:
                slots[t] = profit
                total += profit
                break
    return total


def fractional_knapsack(items: list, capacity: int) -> float:
    total = 0.0
    for weight, value in sorted(items, key=lambda it: it[1] / it[0], reverse=True):
        if capacity <= 0:
            break
        take = min(weight, capacity)
        total += value * take / weight
        capacity -= take
    return total


def gas_station_start(gas: list, cost: list) -> int:
    if sum(gas) < sum(cost):
        return -1
    start, tank = 0, 0
    for i in range(len(gas)):
        tank += gas[i] - cost[i]
        if tank < 0:
            start, tank = i + 1, 0
    return start


def greedy_change(amount: int, coins: list) -> list:
    taken = []
    for coin in sorted(coins, reverse=True):
        while amount >= coin:
            amount -= coin
            taken.append(coin)
    return taken if amount == 0 else None


def min_total_waiting_time(durations: list) -> int:
    total, elapsed = 0, 0
    for d in sorted(durations):
        total += elapsed
        elapsed += d
    return total


def boats_needed(weights: list, limit: int) -> int:
    people = sorted(weights)
    i, j, boats = 0, len(people) - 1, 0
    while i <= j:
        if people[i] + people[j] <= limit:
            i += 1
        j -= 1
        boats += 1
    return boats


def lemonade_change(bills: list) -> bool:
    fives = tens = 0
    for bill in bills:
        if bill == 5:
            fives += 1
        elif bill == 10:
            if not fives:
                return False
            fives, tens = fives - 1, tens + 1
        elif tens and fives:
            tens, fives = tens - 1, fives - 1
        elif fives >= 3:
            fives -= 3
        else:
            return False
    return True


def run_stack_machine(program: list) -> list:
    stack = []
    for line in program:
        op, *arg = line.split()
        if op == "push":
            stack.append(int(arg[0]))
        elif op == "pop":
            stack.pop()
        elif op == "dup":
            stack.append(stack[-1])
        elif op == "swap":
            stack[-1], stack[-2] = stack[-2], stack[-1]
        else:
            b, a = stack.pop(), stack.pop()
            stack.append(a + b if op == "add" else a * b)
    return stack


def run_register_machine(program: list) -> dict:
    registers = {}
    for line in program:
        registers.setdefault(line.split()[1], 0)
    pc = 0
    while 0 <= pc < len(program):
        op, reg, *rest = program[pc].split()
        if op == "set":
            registers[reg] = int(rest[0])
        elif op == "inc":
            registers[reg] += 1
        elif op == "dec":
            registers[reg] -= 1
        elif op == "jnz" and registers[reg] != 0:
            pc += int(rest[0])
            continue
        pc += 1
    return registers


def elevator_scan_order(start: int, requests: list) -> list:
    floors = set(requests)
    up = sorted(f for f in floors if f >= start)
    down = sorted((f for f in floors if f < start), reverse=True)
    return up + down


def langtons_ant_black(steps: int) -> int:
    black = set()
    x = y = 0
    dx, dy = 0, 1
    for _ in range(steps):
        if (x, y) in black:
            dx, dy = -dy, dx
            black.remove((x, y))
        else:
            dx, dy = dy, -dx
            black.add((x, y))
        x, y = x + dx, y + dy
    return len(black)


def toggled_lights_on(n: int) -> list:
    lights = [False] * (n + 1)
    for r in range(1, n + 1):
        for light in range(r, n + 1, r):
            lights[light] = not lights[light]
    return [i for i in range(1, n + 1) if lights[i]]


def bowling_score(rolls: list) -> int:
    score, i = 0, 0
    for _ in range(10):
        if rolls[i] == 10:
            score += 10 + rolls[i + 1] + rolls[i + 2]
            i += 1
        elif rolls[i] + rolls[i + 1] == 10:
            score += 10 + rolls[i + 2]
            i += 2
        else:
            score += rolls[i] + rolls[i + 1]
            i += 2
    return score


def robot_walk(commands: str) -> tuple:
    x, y, dx, dy = 0, 0, 0, 1
    for ch in commands:
        if ch == "F":
            x, y = x + dx, y + dy
        elif ch == "L":
            dx, dy = -dy, dx
        elif ch == "R":
            dx, dy = dy, -dx
    return (x, y)


def snakes_and_ladders(rolls: list, jumps: dict, size: int) -> int:
    square = 1
    for roll in rolls:
        if square + roll > size:
            continue
        square += roll
        square = jumps.get(square, square)
    return square


def hanoi_moves(n: int, source: str, target: str, spare: str) -> list:
    if n == 0:
        return []
    return hanoi_moves(n - 1, source, spare, target) + [(source, target)] + hanoi_moves(n - 1, spare, target, source)


def elementary_automaton(cells: str, rule: int, steps: int) -> str:
    state = [ch == "#" for ch in cells]
    for _ in range(steps):
        padded = [False] + state + [False]
        state = [
            bool(rule >> (padded[i - 1] * 4 + padded[i] * 2 + padded[i + 1]) & 1) for i in range(1, len(padded) - 1)
        ]
    return "".join("#" if alive else "." for alive in state)


def lock_wheel_turns(start: str, target: str) -> int:
    total = 0
    for a, b in zip(start, target):
        diff = abs(int(a) - int(b))
        total += min(diff, 10 - diff)
    return total


def nim_winner(piles: list) -> str:
    x = 0
    for p in piles:
        x ^= p
    return "first" if x else "second"


def shoelace_area(points: list) -> float:
    total = 0
    for i in range(len(points)):
        x1, y1 = points[i]
        x2, y2 = points[(i + 1) % len(points)]
        total += x1 * y2 - x2 * y1
    return abs(total) / 2


def lattice_points_on_segment(p: tuple, q: tuple) -> int:
    return gcd(abs(q[0] - p[0]), abs(q[1] - p[1])) + 1


def interior_lattice_points(points: list) -> int:
    twice_area = 0
    boundary = 0
    for i in range(len(points)):
        (x1, y1), (x2, y2) = points[i], points[(i + 1) % len(points)]
        twice_area += x1 * y2 - x2 * y1
        boundary += gcd(abs(x2 - x1), abs(y2 - y1))
    return (abs(twice_area) - boundary + 2) // 2


def turn_direction(p: tuple, q: tuple, r: tuple) -> int:
    cross = (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])
    return (cross > 0) - (cross < 0)


def segments_intersect(a: tuple, b: tuple, c: tuple, d: tuple) -> bool:
    def cross(o, p, q):
        v = (p[0] - o[0]) * (q[1] - o[1]) - (p[1] - o[1]) * (q[0] - o[0])
        return (v > 0) - (v < 0)

    def on_segment(p, q, r):
        return min(p[0], q[0]) <= r[0] <= max(p[0], q[0]) and min(p[1], q[1]) <= r[1] <= max(p[1], q[1])

    d1, d2, d3, d4 = cross(a, b, c), cross(a, b, d), cross(c, d, a), cross(c, d, b)
    if d1 * d2 < 0 and d3 * d4 < 0:
        return True
    return (
        (d1 == 0 and on_segment(a, b, c))
        or (d2 == 0 and on_segment(a, b, d))
        or (d3 == 0 and on_segment(c, d, a))
        or (d4 == 0 and on_segment(c, d, b))
    )


def convex_hull(points: list) -> list:
    pts = sorted(set(points))

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower, upper = [], []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    hull = lower[:-1] + upper[:-1]
    start = min(range(len(hull)), key=lambda i: (hull[i][1], hull[i][0]))
    return hull[start:] + hull[:start]


def count_axis_rectangles(points: list) -> int:
    point_set = set(points)
    count = 0
    for x1, y1 in points:
        for x2, y2 in points:
            if x1 < x2 and y1 < y2 and (x1, y2) in point_set and (x2, y1) in point_set:
                count += 1
    return count


def max_points_on_line(points: list) -> int:
    if len(points) <= 2:
        return len(points)
    best = 0
    for i, (x1, y1) in enumerate(points):
        slopes = Counter()
        for x2, y2 in points[i + 1 :]:
            dx, dy = x2 - x1, y2 - y1
            g = gcd(dx, dy)
            dx, dy = dx // g, dy // g
            if dx < 0 or (dx == 0 and dy < 0):
                dx, dy = -dx, -dy
            slopes[(dx, dy)] += 1
        if slopes:
            best = max(best, max(slopes.values()) + 1)
    return best


def valid_square(p1: tuple, p2: tuple, p3: tuple, p4: tuple) -> bool:
    pts = [p1, p2, p3, p4]
    dists = sorted((a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2 for i, a in enumerate(pts) for b in pts[i + 1 :])
    return dists[0] > 0 and dists[0] == dists[3] and dists[4] == dists[5] == 2 * dists[0]


def rectangles_union_area(rectangles: list) -> int:
    xs = sorted({x for r in rectangles for x in (r[0], r[2])})
    area = 0
    for left, right in zip(xs, xs[1:]):
        spans = sorted((r[1], r[3]) for r in rectangles if r[0] <= left and r[2] >= right)
        covered, current_end = 0, None
        for y1, y2 in spans:
            if current_end is None or y1 > current_end:
                covered += y2 - y1
                current_end = y2
            elif y2 > current_end:
                covered += y2 - current_end
                current_end = y2
        area += covered * (right - left)
    return area


def lattice_points_in_circle(radius: int) -> int:
    return sum(
        1 for x in range(-radius, radius + 1) for y in range(-radius, radius + 1) if x * x + y * y <= radius * radius
    )


def rotate_point_90(point: tuple, times: int) -> tuple:
    x, y = point
    for _ in range(times % 4):
        x, y = -y, x
    return (x, y)


def ulam_spiral_position(n: int) -> tuple:
    x = y = 0
    directions = [(1, 0), (0, 1), (-1, 0), (0, -1)]
    step, side, d = 0, 1, 0
    while step < n:
        for _ in range(2):
            dx, dy = directions[d % 4]
            for _ in range(side):
                if step == n:
                    return (x, y)
                x, y = x + dx, y + dy
                step += 1
            d += 1
        side += 1
    return (x, y)


def point_in_triangle(a: tuple, b: tuple, c: tuple, p: tuple) -> bool:
    def cross(o, q, r):
        return (q[0] - o[0]) * (r[1] - o[1]) - (q[1] - o[1]) * (r[0] - o[0])

    d1, d2, d3 = cross(a, b, p), cross(b, c, p), cross(c, a, p)
    has_neg = d1 < 0 or d2 < 0 or d3 < 0
    has_pos = d1 > 0 or d2 > 0 or d3 > 0
    return not (has_neg and has_pos)


def knight_distance(start: str, end: str) -> int:
    def square(name):
        return (ord(name[0]) - ord("a"), int(name[1]) - 1)

    goal = square(end)
    queue = deque([(square(start), 0)])
    seen = {square(start)}
    while queue:
        (x, y), dist = queue.popleft()
        if (x, y) == goal:
            return dist
        for dx, dy in ((1, 2), (2, 1), (2, -1), (1, -2), (-1, -2), (-2, -1), (-2, 1), (-1, 2)):
            nxt = (x + dx, y + dy)
            if 0 <= nxt[0] < 8 and 0 <= nxt[1] < 8 and nxt not in seen:
                seen.add(nxt)
                queue.append((nxt, dist + 1))
    return -1
