"""The hand-off packet as a PDF: the page drawn by Qt's rich text, the packet inside.

A PDF reader shows the page; `watchfloor audit verify --bundle FILE.pdf` needs the
packet itself, so it travels twice: as an attached file (handoff.json, for a person
with a PDF reader) and in the document's XMP metadata (base64, under Watchfloor's own
namespace). XMP is stored uncompressed so that tools can find it by scanning the file,
which is how the verifier, with no PDF library, reads it back.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import shiboken6
from PySide6.QtCore import QMarginsF
from PySide6.QtGui import QPageLayout, QPageSize, QPdfWriter, QTextDocument

from console.handoff_html import CSS

XMP_NS = "https://watchfloor.invalid/ns/handoff/1.0/"
ATTACHMENT = "handoff.json"


def xmp_packet(packet: Mapping[str, Any]) -> bytes:
    payload = base64.b64encode(json.dumps(packet, ensure_ascii=False, sort_keys=True)
                               .encode()).decode()
    title = f"Incident {packet['incident']['id']} hand-off"
    return ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
            '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" '
            f'xmlns:wf="{XMP_NS}">'
            f'<dc:title><rdf:Alt><rdf:li xml:lang="x-default">{title}</rdf:li></rdf:Alt>'
            f'</dc:title><wf:packet>{payload}</wf:packet>'
            '</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>').encode()


def write_pdf(body: str, packet: dict[str, Any], out: Path) -> None:
    """Draw `body` (the page's readable HTML) to `out` as A4, with `packet` attached and
    in the metadata. Needs a QGuiApplication. Written to a temporary name first."""
    tmp = out.with_name(out.name + ".tmp")
    writer = QPdfWriter(str(tmp))
    writer.setTitle(f"Incident {packet['incident']['id']} hand-off")
    writer.setCreator("Watchfloor")
    writer.setPageLayout(QPageLayout(QPageSize(QPageSize.PageSizeId.A4),
                                     QPageLayout.Orientation.Portrait,
                                     QMarginsF(12, 12, 12, 12),
                                     QPageLayout.Unit.Millimeter))
    writer.setDocumentXmpMetadata(xmp_packet(packet))
    writer.addFileAttachment(ATTACHMENT, json.dumps(packet, ensure_ascii=False, indent=1,
                                                    sort_keys=True).encode(),
                             "application/json")
    document = QTextDocument()
    document.setDefaultStyleSheet(CSS)
    document.setHtml(body)
    document.print_(writer)
    # Both go now, on the thread that made them (a garbage collection on another thread
    # would stop their timers from there); the file is finished when the writer goes.
    shiboken6.delete(document)
    shiboken6.delete(writer)
    tmp.replace(out)
