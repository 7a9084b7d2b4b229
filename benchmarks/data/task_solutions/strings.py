"""Reference solutions of the strings tasks in benchmarks/data/python_tasks.txt (each example is checked by
tests/test_distill_humaneval_overlap.py). Data for the benchmark, not part of llamarch."""

import re


def identifier_words(name):
    words = []
    for piece in re.split(r"[_-]", name):
        current = ""
        for i, ch in enumerate(piece):
            if ch.isupper() and i > 0 and (piece[i - 1].islower() or piece[i - 1].isdigit()):
                words.append(current)
                current = ""
            current += ch
        words.append(current)
    return [w.lower() for w in words if w]


def format_template(template, values):
    def repl(m):
        key = m.group(1)
        return str(values[key]) if key in values else m.group(0)

    return re.sub(r"\{(\w+)\}", repl, template)


def template_fields(template):
    result = []
    for name in re.findall(r"\{([^{}]*)\}", template):
        if name not in result:
            result.append(name)
    return result


def expand_tab_stops(text, size):
    out = []
    col = 0
    for ch in text:
        if ch == "\t":
            spaces = size - col % size
            out.append(" " * spaces)
            col += spaces
        elif ch == "\n":
            out.append(ch)
            col = 0
        else:
            out.append(ch)
            col += 1
    return "".join(out)


def align_columns(rows):
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])] + [row[-1]]
        lines.append(" ".join(cells))
    return lines


def justify_line(words, width):
    if len(words) == 1:
        return words[0].ljust(width)
    gaps = len(words) - 1
    spaces = width - sum(len(w) for w in words)
    base, extra = divmod(spaces, gaps)
    line = ""
    for i, w in enumerate(words[:-1]):
        line += w + " " * (base + (1 if i < extra else 0))
    return line + words[-1]


def mask_email(email):
    local, _, domain = email.partition("@")
    if len(local) <= 2:
        masked = "*" * len(local)
    else:
        masked = local[0] + "*" * (len(local) - 2) + local[-1]
    return masked + "@" + domain


def redact_words(text, banned):
    banned_set = {b.lower() for b in banned}
    return re.sub(r"[A-Za-z]+", lambda m: "*" * len(m.group()) if m.group().lower() in banned_set else m.group(), text)


def longest_char_run(text):
    best = ("", 0)
    i = 0
    while i < len(text):
        j = i
        while j < len(text) and text[j] == text[i]:
            j += 1
        if j - i > best[1]:
            best = (text[i], j - i)
        i = j
    return best


def squeeze_repeats(text, chars):
    out = []
    for ch in text:
        if out and ch == out[-1] and ch in chars:
            continue
        out.append(ch)
    return "".join(out)


def remove_adjacent_pairs(text):
    stack = []
    for ch in text:
        if stack and stack[-1] == ch:
            stack.pop()
        else:
            stack.append(ch)
    return "".join(stack)


def atbash(text):
    out = []
    for ch in text:
        if "a" <= ch <= "z":
            out.append(chr(ord("z") - (ord(ch) - ord("a"))))
        elif "A" <= ch <= "Z":
            out.append(chr(ord("Z") - (ord(ch) - ord("A"))))
        else:
            out.append(ch)
    return "".join(out)


def _rail_pattern(length, rails):
    pattern, rail, step = [], 0, 1
    for _ in range(length):
        pattern.append(rail)
        if rail == 0:
            step = 1
        elif rail == rails - 1:
            step = -1
        rail += step
    return pattern


def rail_fence_encode(text, rails):
    if rails == 1:
        return text
    pattern = _rail_pattern(len(text), rails)
    return "".join(text[i] for r in range(rails) for i in range(len(text)) if pattern[i] == r)


def rail_fence_decode(cipher, rails):
    if rails == 1:
        return cipher
    pattern = _rail_pattern(len(cipher), rails)
    order = [i for r in range(rails) for i in range(len(cipher)) if pattern[i] == r]
    result = [""] * len(cipher)
    for ch, i in zip(cipher, order):
        result[i] = ch
    return "".join(result)


def column_cipher(text, columns):
    return "".join(text[c::columns] for c in range(columns))


def binary_to_text(bits):
    return "".join(chr(int(group, 2)) for group in bits.split(" "))


def missing_letters(text):
    present = set(text.lower())
    return "".join(ch for ch in "abcdefghijklmnopqrstuvwxyz" if ch not in present)


def reverse_each_word(text):
    return " ".join(word[::-1] for word in text.split(" "))


def reverse_letters_only(text):
    letters = [ch for ch in text if ch.isalpha()]
    return "".join(letters.pop() if ch.isalpha() else ch for ch in text)


def sentence_case(text):
    out = []
    capitalize = True
    for ch in text.lower():
        if ch.isalpha() and capitalize:
            out.append(ch.upper())
            capitalize = False
        else:
            out.append(ch)
        if ch in ".!?":
            capitalize = True
    return "".join(out)


def average_word_length(text):
    words = re.findall(r"[A-Za-z]+", text)
    return sum(len(w) for w in words) / len(words) if words else 0.0


def char_class_counts(text):
    counts = {"upper": 0, "lower": 0, "digit": 0, "space": 0, "other": 0}
    for ch in text:
        if ch.isupper():
            counts["upper"] += 1
        elif ch.islower():
            counts["lower"] += 1
        elif ch.isdigit():
            counts["digit"] += 1
        elif ch.isspace():
            counts["space"] += 1
        else:
            counts["other"] += 1
    return counts


def collapse_repeated_words(text):
    result = []
    for word in text.split(" "):
        if result and word.lower() == result[-1].lower():
            continue
        result.append(word)
    return " ".join(result)


def name_initials(full_name):
    parts = full_name.split()
    return " ".join([p[0].upper() + "." for p in parts[:-1]] + [parts[-1].capitalize()])


def parse_ini(text):
    result = {}
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(";"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            result.setdefault(section, {})
        elif "=" in line:
            key, _, value = line.partition("=")
            result.setdefault(section, {})[key.strip()] = value.strip()
    return result


def parse_headers(text):
    headers = {}
    for line in text.splitlines():
        if ":" not in line:
            continue
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip()
        headers[name] = headers[name] + ", " + value if name in headers else value
    return headers


def parse_dotenv(text):
    result = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        if line.startswith("export "):
            line = line[len("export ") :]
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        result[key.strip()] = value
    return result


def csv_to_records(text):
    lines = [line for line in text.splitlines() if line.strip()]
    header = [h.strip() for h in lines[0].split(",")]
    return [dict(zip(header, [f.strip() for f in line.split(",")])) for line in lines[1:]]


def csv_join(fields):
    out = []
    for field in fields:
        if any(c in field for c in ',"\n'):
            field = '"' + field.replace('"', '""') + '"'
        out.append(field)
    return ",".join(out)


def frame_lines(lines):
    width = max((len(line) for line in lines), default=0)
    border = "*" * (width + 4)
    return [border] + ["* " + line.ljust(width) + " *" for line in lines] + [border]


def zero_pad_numbers(text, width):
    return re.sub(r"\d+", lambda m: m.group().zfill(width), text)


def natural_sort(names):
    def key(name):
        return [(0, int(part), "") if part.isdigit() else (1, 0, part.lower()) for part in re.findall(r"\d+|\D+", name)]

    return sorted(names, key=key)


def increment_string(text):
    m = re.search(r"\d+$", text)
    if not m:
        return text + "1"
    digits = m.group()
    return text[: m.start()] + str(int(digits) + 1).zfill(len(digits))


def parse_page_ranges(text):
    pages = set()
    for part in text.split(","):
        part = part.replace(" ", "")
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-")
            pages.update(range(int(lo), int(hi) + 1))
        else:
            pages.add(int(part))
    return sorted(pages)


def expand_braces(pattern):
    results = [""]
    for literal, group in re.findall(r"([^{]*)(?:\{([^}]*)\})?", pattern):
        results = [r + literal for r in results]
        if group:
            results = [r + option for r in results for option in group.split(",")]
    return results


def glob_match(pattern, text):
    n, m = len(pattern), len(text)
    dp = [[False] * (m + 1) for _ in range(n + 1)]
    dp[0][0] = True
    for i in range(1, n + 1):
        p = pattern[i - 1]
        dp[i][0] = dp[i - 1][0] and p == "*"
        for j in range(1, m + 1):
            if p == "*":
                dp[i][j] = dp[i - 1][j] or dp[i][j - 1]
            elif p == "?" or p == text[j - 1]:
                dp[i][j] = dp[i - 1][j - 1]
    return dp[n][m]


def longest_unique_substring(text):
    best = ""
    start = 0
    last = {}
    for i, ch in enumerate(text):
        if ch in last and last[ch] >= start:
            start = last[ch] + 1
        last[ch] = i
        if i - start + 1 > len(best):
            best = text[start : i + 1]
    return best


def word_distance(text, a, b):
    words = text.split()
    pa = [i for i, w in enumerate(words) if w == a]
    pb = [i for i, w in enumerate(words) if w == b]
    if not pa or not pb:
        return -1
    return min(abs(i - j) for i in pa for j in pb)


def char_ngrams(text, n):
    counts = {}
    for i in range(len(text) - n + 1):
        gram = text[i : i + n]
        counts[gram] = counts.get(gram, 0) + 1
    return counts


def jaccard_words(a, b):
    sa, sb = set(a.lower().split()), set(b.lower().split())
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)


def longest_common_substring(a, b):
    best = ""
    for i in range(len(a)):
        for j in range(i + len(best) + 1, len(a) + 1):
            if a[i:j] in b:
                best = a[i:j]
            else:
                break
    return best


def one_row_words(words):
    rows = [set("qwertyuiop"), set("asdfghjkl"), set("zxcvbnm")]
    return [w for w in words if any(set(w.lower()) <= row for row in rows)]


def word_pattern_match(pattern, text):
    words = text.split()
    if len(words) != len(pattern):
        return False
    forward, backward = {}, {}
    for letter, word in zip(pattern, words):
        if forward.setdefault(letter, word) != word or backward.setdefault(word, letter) != letter:
            return False
    return True


def valid_hex_color(text):
    return re.fullmatch(r"#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})", text) is not None


def valid_mac_address(text):
    return any(re.fullmatch(r"[0-9a-fA-F]{2}(" + sep + r"[0-9a-fA-F]{2}){5}", text) is not None for sep in (":", "-"))


def valid_hostname(name):
    if len(name) > 253:
        return False
    label = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
    return all(label.fullmatch(part) for part in name.split("."))


def detect_case(name):
    if re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", name):
        return "snake"
    if re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", name):
        return "kebab"
    if re.fullmatch(r"[a-z][A-Za-z0-9]*", name) and any(c.isupper() for c in name):
        return "camel"
    if re.fullmatch(r"[A-Z][A-Za-z0-9]*", name) and any(c.islower() for c in name):
        return "pascal"
    return "other"


def strip_comments(code, marker):
    lines = []
    for line in code.split("\n"):
        index = line.find(marker)
        if index != -1:
            line = line[:index]
        lines.append(line.rstrip(" "))
    return "\n".join(lines)


def strip_tags(html):
    return re.sub(r"<[^>]*>", "", html)


def escape_html(text):
    table = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}
    return "".join(table.get(ch, ch) for ch in text)


def unescape_entities(text):
    named = {"amp": "&", "lt": "<", "gt": ">", "quot": '"'}

    def repl(m):
        body = m.group(1)
        if body in named:
            return named[body]
        if body.startswith("#") and body[1:].isdigit():
            return chr(int(body[1:]))
        return m.group(0)

    return re.sub(r"&(#?\w+);", repl, text)


def percent_encode(text):
    safe = "-_.~"
    return "".join(ch if ch.isalnum() or ch in safe else "%%%02X" % ord(ch) for ch in text)


def percent_decode(text):
    return re.sub(r"%([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), text)


def parse_url(url):
    scheme, _, rest = url.partition("://")
    rest = rest.split("?", 1)[0]
    slash = rest.find("/")
    hostport, path = (rest, "/") if slash == -1 else (rest[:slash], rest[slash:])
    host, _, port = hostport.partition(":")
    return {"scheme": scheme, "host": host, "port": int(port) if port else None, "path": path}


def extract_hashtags(text):
    tags = []
    for tag in re.findall(r"#(\w+)", text):
        tag = tag.lower()
        if tag not in tags:
            tags.append(tag)
    return tags


def extract_quoted(text):
    parts = text.split('"')
    return [parts[i] for i in range(1, len(parts) - 1, 2)]


def tokenize_expression(expr):
    return re.findall(r"\d+|[-+*/()]", expr)


def phone_keypad_digits(text):
    keys = {"2": "abc", "3": "def", "4": "ghi", "5": "jkl", "6": "mno", "7": "pqrs", "8": "tuv", "9": "wxyz"}
    table = {letter: digit for digit, letters in keys.items() for letter in letters}
    return "".join(table.get(ch.lower(), ch) for ch in text)


def soundex(name):
    codes = {}
    for digit, letters in {"1": "bfpv", "2": "cgjkqsxz", "3": "dt", "4": "l", "5": "mn", "6": "r"}.items():
        for letter in letters:
            codes[letter] = digit
    name = name.lower()
    result = name[0].upper()
    last = codes.get(name[0], "")
    for ch in name[1:]:
        if ch in "hw":
            continue
        code = codes.get(ch, "")
        if code and code != last:
            result += code
        last = code
    return (result + "000")[:4]


def substitute_words(text, mapping):
    return re.sub(r"[A-Za-z0-9]+", lambda m: mapping.get(m.group(), m.group()), text)


def numeronyms(text):
    return re.sub(r"[A-Za-z]{4,}", lambda m: m.group()[0] + str(len(m.group()) - 2) + m.group()[-1], text)


def middle_ellipsis(text, width):
    if len(text) <= width:
        return text
    keep = width - 3
    head = (keep + 1) // 2
    tail = keep - head
    return text[:head] + "..." + (text[-tail:] if tail else "")


def dedent_text(text):
    lines = text.split("\n")
    indents = [len(line) - len(line.lstrip(" ")) for line in lines if line.strip()]
    cut = min(indents) if indents else 0
    return "\n".join(line[cut:] if line.strip() else "" for line in lines)


def number_lines(text, start):
    lines = text.split("\n")
    width = len(str(start + len(lines) - 1))
    return "\n".join(str(start + i).rjust(width) + ": " + line for i, line in enumerate(lines))


def changed_line_numbers(a, b):
    la, lb = a.split("\n"), b.split("\n")
    return [i + 1 for i in range(max(len(la), len(lb))) if i >= len(la) or i >= len(lb) or la[i] != lb[i]]


def first_repeated_word(text):
    seen = set()
    for word in re.findall(r"[A-Za-z]+", text):
        word = word.lower()
        if word in seen:
            return word
        seen.add(word)
    return ""


def pluralize(noun):
    if noun.endswith(("s", "x", "z", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and len(noun) > 1 and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def join_with_and(items):
    if not items:
        return ""
    if len(items) == 1:
        return items[0]
    if len(items) == 2:
        return items[0] + " and " + items[1]
    return ", ".join(items[:-1]) + ", and " + items[-1]


def to_24_hour(time):
    clock, suffix = time.split()
    hours, minutes = clock.split(":")
    hours = int(hours) % 12
    if suffix.lower() == "pm":
        hours += 12
    return "%02d:%s" % (hours, minutes)


def reformat_date(text):
    months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    day, month, year = text.split()
    return "%s-%02d-%02d" % (year, months.index(month.lower()) + 1, int(day))


def format_phone(text):
    digits = "".join(ch for ch in text if ch.isdigit())
    if len(digits) != 10:
        return ""
    return "(%s) %s-%s" % (digits[:3], digits[3:6], digits[6:])


def vertical_words(text):
    words = text.split()
    height = max((len(w) for w in words), default=0)
    return ["".join(w[i] if i < len(w) else " " for w in words).rstrip() for i in range(height)]


def bacon_encode(text):
    out = []
    for ch in text.lower():
        if "a" <= ch <= "z":
            out.append(format(ord(ch) - ord("a"), "05b").replace("0", "A").replace("1", "B"))
    return "".join(out)


def keyword_cipher(text, key):
    alphabet = ""
    for ch in key + "abcdefghijklmnopqrstuvwxyz":
        if ch not in alphabet:
            alphabet += ch
    return "".join(alphabet[ord(ch) - ord("a")] if "a" <= ch <= "z" else ch for ch in text)


def polybius_encode(text):
    square = "abcdefghiklmnopqrstuvwxyz"
    pairs = []
    for ch in text.lower():
        if "a" <= ch <= "z":
            index = square.index("i" if ch == "j" else ch)
            pairs.append("%d%d" % (index // 5 + 1, index % 5 + 1))
    return " ".join(pairs)


def shared_letters(words):
    result = []
    for ch in sorted(set(words[0])):
        result.extend([ch] * min(w.count(ch) for w in words))
    return result


def steps_to_anagram(a, b):
    steps = 0
    for ch in set(a):
        steps += max(0, a.count(ch) - b.count(ch))
    return steps


def word_break(text, words):
    ok = [True] + [False] * len(text)
    for end in range(1, len(text) + 1):
        ok[end] = any(ok[end - len(w)] and text[end - len(w) : end] == w for w in words if 0 < len(w) <= end)
    return ok[len(text)]


def hapax_words(text):
    words = [w.lower() for w in re.findall(r"[A-Za-z]+", text)]
    return [w for w in words if words.count(w) == 1]


def word_positions(text):
    positions = {}
    for i, word in enumerate(text.lower().split()):
        positions.setdefault(word, []).append(i)
    return positions


def grep_lines(text, word):
    word = word.lower()
    return [
        n for n, line in enumerate(text.split("\n"), 1) if word in [w.lower() for w in re.findall(r"[A-Za-z]+", line)]
    ]


def parse_tag_attributes(text):
    attrs = {}
    i = 0
    while i < len(text):
        if text[i] == " ":
            i += 1
            continue
        j = i
        while j < len(text) and text[j] not in " =":
            j += 1
        name = text[i:j]
        if j < len(text) and text[j] == "=":
            j += 1
            if j < len(text) and text[j] == '"':
                end = text.index('"', j + 1)
                attrs[name] = text[j + 1 : end]
                j = end + 1
            else:
                end = text.find(" ", j)
                end = len(text) if end == -1 else end
                attrs[name] = text[j:end]
                j = end
        else:
            attrs[name] = True
        i = j
    return attrs


def parse_cli_args(argv):
    result = {"_": []}
    for arg in argv:
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            result[name] = value if eq else True
        else:
            result["_"].append(arg)
    return result


def parse_cell_ref(cell):
    m = re.fullmatch(r"([A-Za-z]+)(\d+)", cell)
    column = 0
    for ch in m.group(1).upper():
        column = column * 26 + ord(ch) - ord("A") + 1
    return (int(m.group(2)), column)


def is_decimal_number(text):
    return re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", text.strip()) is not None


def bold_words(text, words):
    bold = [False] * len(text)
    for w in words:
        if not w:
            continue
        start = text.find(w)
        while start != -1:
            for i in range(start, start + len(w)):
                bold[i] = True
            start = text.find(w, start + 1)
    out = []
    for i, ch in enumerate(text):
        if bold[i] and (i == 0 or not bold[i - 1]):
            out.append("<b>")
        out.append(ch)
        if bold[i] and (i == len(text) - 1 or not bold[i + 1]):
            out.append("</b>")
    return "".join(out)


def count_log_levels(lines):
    counts = {}
    for line in lines:
        m = re.match(r"\[([^\]]+)\]", line)
        if m:
            level = m.group(1).upper()
            counts[level] = counts.get(level, 0) + 1
    return counts


def atom_counts(formula):
    counts = {}
    for element, number in re.findall(r"([A-Z][a-z]*)(\d*)", formula):
        counts[element] = counts.get(element, 0) + (int(number) if number else 1)
    return counts


def expand_repeats(code):
    stack = [["", 0]]
    number = 0
    for ch in code:
        if ch.isdigit():
            number = number * 10 + int(ch)
        elif ch == "[":
            stack.append(["", number])
            number = 0
        elif ch == "]":
            part, times = stack.pop()
            stack[-1][0] += part * times
        else:
            stack[-1][0] += ch
    return stack[0][0]


def split_fixed_width(record, widths):
    fields, pos = [], 0
    for w in widths:
        fields.append(record[pos : pos + w].strip())
        pos += w
    return fields


def align_assignments(lines):
    width = max((line.index("=") for line in lines if "=" in line), default=0)
    return [line[: line.index("=")].ljust(width) + line[line.index("=") :] if "=" in line else line for line in lines]


def smallest_repeating_unit(text):
    for size in range(1, len(text) + 1):
        if len(text) % size == 0 and text[:size] * (len(text) // size) == text:
            return text[:size]
    return text


def is_interleaving(a, b, c):
    if len(a) + len(b) != len(c):
        return False
    ok = [[False] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        for j in range(len(b) + 1):
            if i == 0 and j == 0:
                ok[i][j] = True
            else:
                ok[i][j] = (i > 0 and ok[i - 1][j] and a[i - 1] == c[i + j - 1]) or (
                    j > 0 and ok[i][j - 1] and b[j - 1] == c[i + j - 1]
                )
    return ok[len(a)][len(b)]


def normalize_email(email):
    local, _, domain = email.lower().partition("@")
    local = local.split("+", 1)[0].replace(".", "")
    return local + "@" + domain


def format_license_key(key, k):
    chars = key.replace("-", "").upper()
    first = len(chars) % k or k
    groups = [chars[:first]] + [chars[i : i + k] for i in range(first, len(chars), k)]
    return "-".join(g for g in groups if g)


def valid_abbreviation(word, abbr):
    i = j = 0
    while j < len(abbr):
        if abbr[j].isdigit():
            if abbr[j] == "0":
                return False
            start = j
            while j < len(abbr) and abbr[j].isdigit():
                j += 1
            i += int(abbr[start:j])
        else:
            if i >= len(word) or word[i] != abbr[j]:
                return False
            i += 1
            j += 1
    return i == len(word)


def parse_leading_int(text):
    m = re.match(r" *([+-]?\d+)", text)
    return int(m.group(1)) if m else 0


def apply_backspaces(text):
    out = []
    for ch in text:
        if ch == "#":
            if out:
                out.pop()
        else:
            out.append(ch)
    return "".join(out)


def simplify_path(path):
    parts = []
    for part in path.split("/"):
        if part == "..":
            if parts:
                parts.pop()
        elif part and part != ".":
            parts.append(part)
    return "/" + "/".join(parts)


def common_path(paths):
    split = [[p for p in path.split("/") if p] for path in paths]
    common = []
    for parts in zip(*split):
        if all(p == parts[0] for p in parts):
            common.append(parts[0])
        else:
            break
    return "/" + "/".join(common)


def count_extensions(filenames):
    counts = {}
    for name in filenames:
        dot = name.rfind(".")
        ext = name[dot + 1 :].lower() if dot > 0 else ""
        counts[ext] = counts.get(ext, 0) + 1
    return counts


def wordle_feedback(secret, guess):
    result = ["."] * len(guess)
    remaining = {}
    for i, (s, g) in enumerate(zip(secret, guess)):
        if s == g:
            result[i] = "G"
        else:
            remaining[s] = remaining.get(s, 0) + 1
    for i, g in enumerate(guess):
        if result[i] != "G" and remaining.get(g, 0) > 0:
            result[i] = "Y"
            remaining[g] -= 1
    return "".join(result)


def scrabble_score(word):
    values = {}
    for score, letters in {1: "aeioulnrst", 2: "dg", 3: "bcmp", 4: "fhvwy", 5: "k", 8: "jx", 10: "qz"}.items():
        for letter in letters:
            values[letter] = score
    return sum(values.get(ch, 0) for ch in word.lower())


def progress_bar(fraction, width):
    fraction = min(1.0, max(0.0, fraction))
    filled = int(fraction * width)
    return "[" + "#" * filled + "." * (width - filled) + "] " + str(int(fraction * 100)) + "%"


def format_cents(cents):
    sign = "-" if cents < 0 else ""
    dollars, rest = divmod(abs(cents), 100)
    return "%s$%s.%02d" % (sign, f"{dollars:,}", rest)


def reverse_complement(dna):
    pairs = {"A": "T", "T": "A", "C": "G", "G": "C", "a": "t", "t": "a", "c": "g", "g": "c"}
    return "".join(pairs[ch] for ch in reversed(dna))


def markdown_headings(text):
    result = []
    for line in text.split("\n"):
        m = re.match(r"(#{1,6}) (.*)", line)
        if m:
            result.append((len(m.group(1)), m.group(2).strip()))
    return result


def markdown_links(text):
    return re.findall(r"\[([^\[\]()]*)\]\(([^\[\]()]*)\)", text)


def csv_column_total(text, column):
    lines = text.split("\n")
    index = [h.strip() for h in lines[0].split(",")].index(column)
    total = 0.0
    for line in lines[1:]:
        fields = line.split(",")
        if index < len(fields) and fields[index].strip():
            total += float(fields[index])
    return total


def sort_by_custom_alphabet(words, order):
    rank = {ch: i for i, ch in enumerate(order)}
    return sorted(words, key=lambda w: [rank[ch] for ch in w])
