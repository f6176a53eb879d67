"""Incremental ``Content-Encoding`` decoding of the teed copy of a response body.

At the transport / event-hook layer the bytes are still content-encoded (the SDKs send
``Accept-Encoding: gzip, deflate`` and, with ``zstandard`` installed, httpx adds ``zstd``).
``gzip`` and ``deflate`` are decoded with :mod:`zlib`; ``br`` and ``zstd`` with the same
optional libraries httpx itself uses, when they are importable (httpx only advertises an
encoding it can decode, so the library is there whenever the server may use it).

Each decoder yields the decoded bytes in pieces of at most ``MAX_PIECE`` bytes, so a
small compressed chunk never inflates into one huge buffer at once.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Any, Protocol

__all__ = ["IDENTITY", "MAX_PIECE", "Decoder", "UnsupportedEncoding", "is_identity", "make_decoder"]

MAX_PIECE = 1 << 20


class UnsupportedEncoding(Exception):
    """The response uses a content encoding this tee cannot decode."""


class Decoder(Protocol):
    def decode(self, data: bytes) -> Iterator[bytes]: ...

    def flush(self) -> Iterator[bytes]: ...


class _Identity:
    def decode(self, data: bytes) -> Iterator[bytes]:
        if data:
            yield data

    def flush(self) -> Iterator[bytes]:
        return iter(())


IDENTITY = _Identity()
"""The decoder of an unencoded body (it keeps no state: one serves every body)."""


class _Zlib:
    """gzip (``wbits=31``, concatenated members too) or deflate (zlib, else raw)."""

    def __init__(self, gzip: bool) -> None:
        self._gzip = gzip
        self._wbits = zlib.MAX_WBITS | 16 if gzip else zlib.MAX_WBITS
        self._obj: Any = zlib.decompressobj(self._wbits)
        self._first = True

    def decode(self, data: bytes) -> Iterator[bytes]:
        while data:
            try:
                out = self._obj.decompress(data, MAX_PIECE)
            except zlib.error:
                if self._first and not self._gzip:
                    self._first = False
                    self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
                    continue
                raise
            self._first = False
            if out:
                yield out
            data = self._obj.unconsumed_tail
            if not data and self._obj.eof and self._obj.unused_data and self._gzip:
                data = self._obj.unused_data
                self._obj = zlib.decompressobj(self._wbits)

    def flush(self) -> Iterator[bytes]:
        out = self._obj.flush()
        if out:
            yield out


class _Zstd:
    def __init__(self) -> None:
        self._new: Any = _zstd_factory()
        self._obj: Any = self._new()

    def decode(self, data: bytes) -> Iterator[bytes]:
        while data:
            out = self._obj.decompress(data)
            if out:
                yield out
            if not self._obj.eof:
                return
            data = self._obj.unused_data
            self._obj = self._new()

    def flush(self) -> Iterator[bytes]:
        return iter(())


def _zstd_factory() -> Any:
    for name in ("compression.zstd", "backports.zstd"):
        try:
            module = __import__(name, fromlist=["ZstdDecompressor"])
            return module.ZstdDecompressor
        except ImportError:
            continue
    try:
        import zstandard
    except ImportError as exc:
        raise UnsupportedEncoding("zstd") from exc
    return lambda: zstandard.ZstdDecompressor().decompressobj()


class _Brotli:
    def __init__(self) -> None:
        try:
            import brotli
        except ImportError:
            try:
                import brotlicffi as brotli
            except ImportError as exc:
                raise UnsupportedEncoding("br") from exc
        obj = brotli.Decompressor()
        self._process: Any = getattr(obj, "process", None) or obj.decompress

    def decode(self, data: bytes) -> Iterator[bytes]:
        if data:
            out = self._process(data)
            if out:
                yield out

    def flush(self) -> Iterator[bytes]:
        return iter(())


class _Chain:
    """Several encodings, applied in the order listed: decode in reverse."""

    def __init__(self, decoders: list[Decoder]) -> None:
        self._decoders = decoders

    def decode(self, data: bytes) -> Iterator[bytes]:
        return self._through(0, iter((data,)), flush=False)

    def flush(self) -> Iterator[bytes]:
        return self._through(0, iter(()), flush=True)

    def _through(self, index: int, pieces: Iterator[bytes], *, flush: bool) -> Iterator[bytes]:
        if index == len(self._decoders):
            yield from pieces
            return
        decoder = self._decoders[index]

        def run() -> Iterator[bytes]:
            for piece in pieces:
                yield from decoder.decode(piece)
            if flush:
                yield from decoder.flush()

        yield from self._through(index + 1, run(), flush=flush)


def is_identity(decoder: object) -> bool:
    """True for the decoder of an unencoded body (its pieces are the chunks themselves)."""
    return type(decoder) is _Identity


def make_decoder(content_encoding: str | None) -> Decoder:
    """The decoder for a ``Content-Encoding`` header value.

    Raises :class:`UnsupportedEncoding` (with the encoding's name) when one is unknown or
    its library is not installed.
    """
    if not content_encoding:
        return IDENTITY
    names = [n.strip().lower() for n in content_encoding.split(",")]
    names = [n for n in names if n and n != "identity"]
    decoders: list[Decoder] = []
    for name in reversed(names):
        if name in ("gzip", "x-gzip"):
            decoders.append(_Zlib(gzip=True))
        elif name == "deflate":
            decoders.append(_Zlib(gzip=False))
        elif name == "zstd":
            decoders.append(_Zstd())
        elif name == "br":
            decoders.append(_Brotli())
        else:
            raise UnsupportedEncoding(name)
    if not decoders:
        return IDENTITY
    if len(decoders) == 1:
        return decoders[0]
    return _Chain(decoders)
