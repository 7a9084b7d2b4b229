"""Pure logic: UTF-8 across token boundaries and stop strings across chunk boundaries."""

from llamarch.backends.textstream import StopMatcher, Utf8Stream


def feed_all(matcher: StopMatcher, pieces: list[str]) -> str:
    return "".join(matcher.feed(p) for p in pieces) + matcher.flush()


def test_stop_string_split_across_chunks_is_cut_before_it():
    m = StopMatcher(["</end>"])
    assert feed_all(m, ["hello </", "en", "d> ignored"]) == "hello "
    assert m.stopped


def test_partial_stop_prefix_is_released_when_it_does_not_complete():
    m = StopMatcher(["STOP"])
    out = [m.feed("ab ST"), m.feed("ay")]
    assert out == ["ab ", "STay"]
    assert not m.stopped


def test_earliest_of_several_stops_wins():
    m = StopMatcher(["bb", "a"])
    assert feed_all(m, ["xxbba"]) == "xx"


def test_no_stops_passes_everything_through():
    m = StopMatcher([])
    assert feed_all(m, ["a", "b"]) == "ab"


def test_multibyte_character_split_across_tokens_comes_out_whole():
    s = Utf8Stream()
    data = "é🙂".encode()
    out = [s.feed(data[:1]), s.feed(data[1:3]), s.feed(data[3:])]
    assert out[0] == "" and "".join(out) + s.flush() == "é🙂"
