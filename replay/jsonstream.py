"""A JSON object read in order, a chunk of text at a time: its members one by one, and
an array member's entries one by one, so that no more than one entry and one chunk
of text is held however big the document.

The values themselves are decoded by the json module's own scanner, and any error is
reported by the json module too (it is asked to parse the text from the point where
reading stopped, behind the few characters that put its parser in the same state):
the messages, positions and exceptions are the ones `json.loads` of the whole text
gives, on every Python version, with the line and column counted in the whole text.
"""
import codecs
import json
import re
from json.decoder import WHITESPACE
from typing import Any, Callable, Iterator, Optional, Tuple

__all__ = ["JsonStream", "JsonSyntaxError", "StreamDisagrees", "CHUNK_BYTES"]

# Read at a time: big enough that the per-read costs vanish, small next to a journal.
CHUNK_BYTES = 1 << 20

# After an entry: its `,` and the whitespace before the next one.
_COMMA_NEXT = re.compile(r"[ \t\n\r]*(,)[ \t\n\r]*")

# What puts json's parser in the state the stream was in where it stopped; `prefix` is
# followed by the text from the position the stream had marked (see `_fail`).
_OBJECT_FIRST = ""          # from the `{`: a key or `}` expected
_OBJECT_NEXT = '{"":0'      # from the `,`: a key expected
_OBJECT_COLON = "{"         # from the key: its `:` expected
_OBJECT_VALUE = '{""'       # from the `:`: a value expected
_OBJECT_AFTER = '{"":0'     # from the end of a value: `,` or `}` expected
_ARRAY_FIRST = ""           # from the `[`: a value or `]` expected
_ARRAY_NEXT = "[0"          # from the `,`: a value expected
_ARRAY_AFTER = "[0"         # from the end of a value: `,` or `]` expected
_DOCUMENT_END = "{}"        # from the end of the document's object: nothing but whitespace


class JsonSyntaxError(ValueError):
    """`json.JSONDecodeError`'s message, line and column, in the whole text; `truncated`
    when only whitespace follows where the text went wrong (it was cut short)."""

    def __init__(self, msg: str, lineno: int, colno: int, truncated: bool):
        super().__init__(f"{msg}: line {lineno} column {colno}")
        self.msg, self.lineno, self.colno, self.truncated = msg, lineno, colno, truncated


class StreamDisagrees(Exception):
    """The stream stopped where json reads on: a bug here, never the text's fault (the caller
    reads the whole text with json instead)."""


class JsonStream:
    """One JSON document, read with `read(size)` (bytes, b"" at the end) after `head`, the
    first bytes `read` gave (`rewind` makes it give them again).

    Raises UnicodeDecodeError when the bytes are not UTF-8 (a leading BOM is dropped,
    as the `utf-8-sig` codec does), JsonSyntaxError, RecursionError (nested too deeply)
    and ValueError (an integer json refuses to read), as `json.loads` would."""

    def __init__(self, read: Callable[[int], bytes], rewind: Callable[[], None], head: bytes = b"",
                 chunk_bytes: int = CHUNK_BYTES):
        self._read = read
        # Makes `read` start again from the first byte: the lines of the text dropped are
        # counted only to place an error, by reading it again (counting them as the text
        # goes by would cost a tenth of the reading).
        self._rewind = rewind
        self._pending = head
        self._chunk_bytes = max(1, chunk_bytes)
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self._scan = json.JSONDecoder().scan_once
        self._text = ""        # the text read and still kept
        self._base = 0         # the position of `_text[0]` in the whole text
        self._keep = 0         # nothing from here on is dropped (a position the stream may go back to)
        self._eof = False
        self._reads = 0        # chunks read so far
        self.at = 0            # the position of the next character to read
        self._on_text: Callable[[str], None] = lambda text: None

    def watch(self, on_text: Callable[[str], None]) -> None:
        """Call `on_text` with every piece of text as it is decoded (with the few characters
        before it, so that nothing a search looks for is cut in two)."""
        self._on_text = on_text
        if self._text:
            on_text(self._text)

    # -- the document's structure ---------------------------------------------------------

    def next_char(self) -> str:
        """The next character other than whitespace ("" at the end), without taking it."""
        char, self.at = self._char(self.at)
        return char

    def members(self) -> Iterator[str]:
        """The keys of the object starting at the next character; after each, the caller
        takes the member's value (`value` or `entries`)."""
        char, start = self._char(self.at)
        self._keep = start
        if char != "{":
            self._fail(_OBJECT_FIRST, start)
        char, at = self._char(start + 1)
        if char == "}":
            self.at = at + 1
            return
        prefix, mark = _OBJECT_FIRST, start
        while True:
            if char != '"':
                self._fail(prefix, mark)
            self._keep = at
            key, end = self._value_at(at, _OBJECT_COLON, at)
            char, colon = self._char(end)
            if char != ":":
                self._fail(_OBJECT_COLON, at)
            self._keep = colon
            char, self.at = self._char(colon + 1)
            if not char:
                self._fail(_OBJECT_VALUE, colon)
            self._value_mark = (_OBJECT_VALUE, colon)
            yield key
            comma = self._comma_or_end("}", _OBJECT_AFTER)
            if comma is None:
                return
            prefix, mark = _OBJECT_NEXT, comma
            char, at = self._char(comma + 1)

    def _open_array(self) -> Optional[int]:
        """Past the `[` of the array at the next character: where it starts, or None for an
        empty array (read to its `]`)."""
        char, start = self._char(self.at)
        self._keep = start
        if char != "[":
            self._fail(_ARRAY_FIRST, start)
        char, self.at = self._char(start + 1)
        if char == "]":
            self.at += 1
            return None
        return start

    def slots(self) -> Iterator[int]:
        """The indexes of the entries of the array starting at the next character, as
        `members` gives an object's keys: after each, the caller takes the entry (`value`,
        `members` or `entries`), so that an entry too is read a part at a time."""
        start = self._open_array()
        if start is None:
            return
        prefix, mark, index = _ARRAY_FIRST, start, 0
        while True:
            self._value_mark = (prefix, mark)
            yield index
            comma = self._comma_or_end("]", _ARRAY_AFTER)
            if comma is None:
                return
            prefix, mark, index = _ARRAY_NEXT, comma, index + 1
            _, self.at = self._char(comma + 1)

    def entries(self) -> Iterator[Any]:
        """The entries of the array starting at the next character, each whole, one by one."""
        start = self._open_array()
        if start is None:
            return
        prefix, mark = _ARRAY_FIRST, start
        scan, comma_next = self._scan, _COMMA_NEXT.match
        # What comes between two entries (the end of one, its `,` and whitespace, the start
        # of the next), as the first two showed; and the read after which a batch failed.
        between, failed_after = None, -1
        # Runs once per entry of a journal of 10^6: the common case (the entry, then `,` and
        # the next entry's start, all in the text read) inline; anything else the slow way.
        while True:
            text, base = self._text, self._base
            local = self.at - base
            batch = None
            if between is not None and failed_after != self._reads:
                # The entries up to the last place in the text that looks like the end of one,
                # in one scan (json's scanner parses a batch faster than each entry alone). It
                # parses only when that place is the end of an entry: else one goes at a time.
                cut = text.rfind(between, local) + 1
                if cut > local:
                    try:
                        batch, end = scan("[" + text[local:cut] + "]", 0)
                    except (StopIteration, ValueError, RecursionError):
                        batch = None
                    if batch is None or end != cut - local + 2:
                        batch, failed_after = None, self._reads
                else:  # none in the rest of the text read: no need to look again before the next read
                    failed_after = self._reads
            if batch is not None:
                end = cut
                yield from batch
                batch = None
            else:
                try:
                    value, end = scan(text, local)
                except (StopIteration, ValueError, RecursionError):
                    end = len(text)
                if end >= len(text):  # cut short by the chunk's end (or wrong): read on, or fail
                    value, self.at = self._value_at(self.at, prefix, mark)
                    text, base, end = self._text, self._base, self.at - self._base
                yield value
            text, base = self._text, self._base
            following = comma_next(text, end)
            if following is not None and following.end() < len(text):
                if between is None and text[end - 1] in "}]" and text[following.end()] in "{[":
                    between = text[end - 1:following.end() + 1]
                mark = following.start(1) + base
                self._keep = mark
                self.at = following.end() + base
                prefix = _ARRAY_NEXT
                continue
            self.at = end + base
            comma = self._comma_or_end("]", _ARRAY_AFTER)
            if comma is None:
                return
            prefix, mark = _ARRAY_NEXT, comma
            _, self.at = self._char(comma + 1)

    def _comma_or_end(self, close: str, prefix: str) -> Optional[int]:
        """After a member's or an entry's value: where the `,` that follows is, or None (and
        the stream past it) when `close` ends the object or array there."""
        self._keep = self.at
        char, at = self._char(self.at)
        if char == close:
            self.at = at + 1
            return None
        if char != ",":
            self._fail(prefix, self.at)
        self._keep = at
        return at

    def value(self) -> Any:
        """The whole value at the next character (of a member or an entry)."""
        prefix, mark = self._value_mark
        value, self.at = self._value_at(self.at, prefix, mark)
        return value

    def end(self) -> None:
        """Check that nothing but whitespace follows the document's object."""
        self._keep = self.at
        char, at = self._char(self.at)
        if char:
            self._fail(_DOCUMENT_END, self.at)

    def rest(self) -> str:
        """All the text from the next character on (to parse a document some other way)."""
        self._keep = self.at
        while not self._eof:
            self._read_more()
        return self._text[self.at - self._base:]

    # -- reading ----------------------------------------------------------------------------

    def _char(self, at: int) -> Tuple[str, int]:
        while True:
            local = WHITESPACE.match(self._text, at - self._base).end()
            if local < len(self._text) or self._eof:
                return self._text[local:local + 1], local + self._base
            at = local + self._base
            self._read_more()

    def _value_at(self, at: int, prefix: str, mark: int) -> Tuple[Any, int]:
        """The value at `at`: read on while it may go on past the text read so far (a value
        cut short by a chunk's end fails or, a number, ends early); at the end of the text
        its error is json's own, from `mark` behind `prefix`."""
        while True:
            try:
                value, end = self._scan(self._text, at - self._base)
            except (StopIteration, ValueError, RecursionError):
                if self._eof:
                    self._fail(prefix, mark)
                self._read_more()
                continue
            if end == len(self._text) and not self._eof:
                self._read_more()
                continue
            return value, end + self._base

    def _read_more(self) -> None:
        """Append the next chunk, dropping the text before `_keep`. An entry longer than a
        chunk is read again from its start after each chunk: the chunk grows with the
        text kept, so such an entry costs a few reads, not one per chunk."""
        drop = self._keep - self._base
        if drop > 0:
            self._text = self._text[drop:]
            self._base = self._keep
        self._reads += 1
        size = max(self._chunk_bytes, len(self._text))
        if self._pending:
            data, self._pending = self._pending[:size], self._pending[size:]
        else:
            data = self._read(size)
        tail = self._text[-8:]
        if data:
            text = self._decoder.decode(data)
        else:
            text = self._decoder.decode(b"", final=True)
            self._eof = True
        if text:
            self._text += text
            self._on_text(tail + text)

    # -- errors -----------------------------------------------------------------------------

    def _fail(self, prefix: str, mark: int) -> None:
        """Raise json's error for the text from `mark` on, read to its end, behind `prefix`."""
        self._keep = min(self._keep, mark)
        while not self._eof:
            self._read_more()
        fragment = prefix + self._text[mark - self._base:]
        try:
            json.loads(fragment)
        except json.JSONDecodeError as error:
            if error.pos >= len(prefix):
                at = mark - self._base + error.pos - len(prefix)
                lineno, colno = self._line_and_column(at)
                raise JsonSyntaxError(error.msg, lineno, colno, not fragment[error.pos:].strip()) from None
        # json's other errors (nested too deeply, too long a number) propagate: it says them of the
        # whole text too. Reaching here, json read on where the stream stopped.
        raise StreamDisagrees(mark)

    def _line_and_column(self, local: int) -> Tuple[int, int]:
        lines, column = self._dropped_lines()
        lines, column = _lines_and_column(self._text[:local], lines, column)
        return lines + 1, column + 1

    def _dropped_lines(self) -> Tuple[int, int]:
        """The newlines of the text dropped before `_text`, and the characters after the last."""
        self._rewind()
        decoder = codecs.getincrementaldecoder("utf-8-sig")()
        lines = column = seen = 0
        while seen < self._base:
            data = self._read(self._chunk_bytes)
            text = decoder.decode(data, final=not data)[:self._base - seen]
            lines, column = _lines_and_column(text, lines, column)
            seen += len(text)
            if not data:
                break
        return lines, column


def _lines_and_column(text: str, lines: int, column: int) -> Tuple[int, int]:
    """(newlines, characters after the last) of what came before, followed by `text`."""
    newlines = text.count("\n")
    if not newlines:
        return lines, column + len(text)
    return lines + newlines, len(text) - text.rfind("\n") - 1
