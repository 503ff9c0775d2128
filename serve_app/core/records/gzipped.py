import zlib
from typing import Final

from serve_app.core.records.base import BufferedRecordParser, Record, UploadError

# Output per decompress call: what a gzip bomb can make us allocate at once.
_STEP: Final = 256 * 1024


class GzipParser:
    """Decompresses gzip (one or more members) incrementally into another parser."""

    def __init__(self, inner: BufferedRecordParser, max_decompressed_bytes: int) -> None:
        self._inner = inner
        self._limit = max_decompressed_bytes
        self._inflate = zlib.decompressobj(wbits=31)
        self._in_member = False  # a member has started and not ended
        self._total = 0

    @property
    def buffered_bytes(self) -> int:
        return self._inner.buffered_bytes

    def feed(self, data: bytes) -> list[Record]:
        out: list[Record] = []
        more_output = False  # the last call filled _STEP: zlib may hold more
        while data or more_output:
            if data:
                self._in_member = True
            try:
                piece = self._inflate.decompress(data, _STEP)
            except zlib.error as exc:
                raise UploadError(f"invalid gzip data: {exc}") from None
            self._total += len(piece)
            if self._total > self._limit:
                raise UploadError(f"decompressed data is over the limit of {self._limit} bytes")
            if piece:
                out += self._inner.feed(piece)
            if self._inflate.eof:
                # Another member may follow (`cat a.gz b.gz` is valid gzip).
                data = self._inflate.unused_data
                self._inflate = zlib.decompressobj(wbits=31)
                self._in_member = False
                more_output = False
            else:
                data = self._inflate.unconsumed_tail
                more_output = len(piece) == _STEP
        return out

    def close(self) -> list[Record]:
        if self._in_member:
            raise UploadError("gzip data is truncated")
        return self._inner.close()
