"""The receipt printer: ESC/POS through python-escpos, over the network (port 9100), USB,
a serial port or a device file, on 58 mm (32 columns) or 80 mm (48 columns) paper, Chinese
in GB18030 (issue 11 item 6). No Textual here; printing blocks, so the UI calls
``print_text`` in a thread.

The printer is one text setting (config ``printer``, F5):

| setting | printer |
|---|---|
| ``none`` | no printer (the default): receipts are shown and can be saved as text |
| ``network:HOST[:PORT]`` | an Ethernet/Wi-Fi receipt printer, raw TCP (port 9100 by default) |
| ``usb:VENDOR:PRODUCT`` | a USB printer by its ids, hex (``usb:0x0416:0x5011``); needs pyusb |
| ``serial:PATH[:BAUD]`` | a serial printer (``serial:/dev/ttyUSB0:19200``); needs pyserial |
| ``device:PATH`` | a printer device file (``device:/dev/usb/lp0``) |
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

PrinterKind = Literal["none", "network", "usb", "serial", "device"]
PAPER_COLUMNS: dict[int, int] = {58: 32, 80: 48}
"""Characters per line of a receipt printer's standard font (a CJK character takes two)."""

INIT = b"\x1b@"  # ESC @: reset the printer
CHINESE_ON = b"\x1c&"  # FS &: the printer's Chinese (GB18030/GBK) character mode
CHINESE_OFF = b"\x1c."  # FS .: back to single-byte characters


class PrinterInvalid(ValueError):
    """A printer setting that cannot be used; the message says why."""


class PrintFailed(Exception):
    """The printer could not be reached or refused the job."""


@dataclass(frozen=True, slots=True)
class PrinterSettings:
    kind: PrinterKind = "none"
    host: str = ""
    port: int = 9100
    vendor: int = 0
    product: int = 0
    path: str = ""
    baudrate: int = 9600

    @property
    def spec(self) -> str:
        """The setting as typed (``parse_printer(s.spec) == s``)."""
        if self.kind == "network":
            return f"network:{self.host}:{self.port}"
        if self.kind == "usb":
            return f"usb:0x{self.vendor:04x}:0x{self.product:04x}"
        if self.kind == "serial":
            return f"serial:{self.path}:{self.baudrate}"
        if self.kind == "device":
            return f"device:{self.path}"
        return "none"


def _number(text: str, what: str, low: int, high: int, base: int = 10) -> int:
    try:
        value = int(text, base)
    except ValueError:
        raise PrinterInvalid(f"{what} must be a number, got {text!r}") from None
    if not low <= value <= high:
        raise PrinterInvalid(f"{what} must be from {low} to {high}, got {value}")
    return value


def parse_printer(spec: str) -> PrinterSettings:
    """``none``, ``network:HOST[:PORT]``, ``usb:VENDOR:PRODUCT``, ``serial:PATH[:BAUD]`` or
    ``device:PATH``."""
    text = spec.strip()
    kind, _, rest = text.partition(":")
    kind = kind.lower()
    if kind in ("", "none"):
        if rest:
            raise PrinterInvalid(f"'none' takes nothing after it, got {spec!r}")
        return PrinterSettings()
    if kind == "network":
        host, _, port = rest.rpartition(":") if rest.count(":") == 1 else (rest, "", "")
        host = host.strip("[] ")
        if not host or any(ch.isspace() for ch in host):
            raise PrinterInvalid(f"network:HOST[:PORT], got {spec!r}")
        number = _number(port, "port", 1, 65535) if port else 9100
        return PrinterSettings("network", host=host, port=number)
    if kind == "usb":
        ids = rest.split(":")
        if len(ids) != 2:
            raise PrinterInvalid(f"usb:VENDOR:PRODUCT (hex ids), got {spec!r}")
        vendor, product = (_number(i.strip(), "a USB id", 1, 0xFFFF, 16) for i in ids)
        return PrinterSettings("usb", vendor=vendor, product=product)
    if kind == "serial":
        path, _, baud = rest.rpartition(":") if ":" in rest else (rest, "", "")
        if not path.startswith("/") and not path.upper().startswith("COM"):
            raise PrinterInvalid(f"serial:PATH[:BAUD], got {spec!r}")
        baudrate = _number(baud, "baud rate", 1200, 921_600) if baud else 9600
        return PrinterSettings("serial", path=path, baudrate=baudrate)
    if kind == "device":
        if not rest.startswith("/"):
            raise PrinterInvalid(f"device:PATH (an absolute path), got {spec!r}")
        return PrinterSettings("device", path=rest)
    raise PrinterInvalid(f"the printer is none, network:, usb:, serial: or device:, got {spec!r}")


def parse_paper(value: object) -> int:
    if isinstance(value, str) and value.strip().removesuffix("mm").strip().isdigit():
        value = int(value.strip().removesuffix("mm"))
    if type(value) is not int or value not in PAPER_COLUMNS:
        raise PrinterInvalid(f"the paper is 58 or 80 (mm), got {value!r}")
    return value


def open_printer(settings: PrinterSettings, timeout: float = 10.0) -> Any:
    """A python-escpos printer for the setting (not yet connected: the first byte does)."""
    from escpos import printer  # the library loads its printer profiles: only when printing

    if settings.kind == "network":

        class Network(printer.Network):  # type: ignore[misc]
            def open(self, raise_not_found: bool = True) -> None:
                # the library's own open leaks its socket when the printer is not there
                try:
                    self.device = socket.create_connection(
                        (self.host, self.port), timeout=self.timeout
                    )
                except OSError as exc:
                    raise PrintFailed(f"network:{self.host}:{self.port}: {exc}") from exc

        return Network(settings.host, settings.port, timeout=timeout)
    if settings.kind == "usb":
        return printer.Usb(settings.vendor, settings.product, timeout=int(timeout * 1000))
    if settings.kind == "serial":
        return printer.Serial(settings.path, baudrate=settings.baudrate, timeout=timeout)
    if settings.kind == "device":
        return printer.File(settings.path)
    raise PrintFailed("no printer is set up")


def escpos_job(p: Any, text: str) -> None:
    """One receipt on an ESC/POS printer ``p``: reset, the text (GB18030 in the printer's
    Chinese mode when it holds any non-ASCII character), feed and cut."""
    p._raw(INIT)
    if text.isascii():
        p._raw(text.encode("ascii"))
    else:
        p._raw(CHINESE_ON)
        p._raw(text.encode("gb18030", errors="replace"))
        p._raw(CHINESE_OFF)
    p.cut()


PrinterFactory = Callable[[PrinterSettings], Any]


def print_text(settings: PrinterSettings, text: str, factory: PrinterFactory | None = None) -> None:
    """Print ``text`` and cut; blocking. Raises ``PrintFailed`` with the reason."""
    if settings.kind == "none":
        raise PrintFailed("no printer is set up")
    try:
        p = (factory or open_printer)(settings)
        try:
            escpos_job(p, text)
        finally:
            p.close()
    except PrintFailed:
        raise
    except Exception as exc:  # the library's own errors, OSError, a missing pyusb...
        raise PrintFailed(f"{settings.spec}: {type(exc).__name__}: {exc}") from exc
