"""Receipt PDF (收据): ReportLab with its built-in CID font STSong-Light, so Chinese text
needs no font file on the machine. The amount is printed in figures and in Chinese
capitals; a dashed box leaves room for the company seal (盖章处)."""

from __future__ import annotations

import io
from zoneinfo import ZoneInfo

from reportlab.lib.pagesizes import A5  # type: ignore[import-untyped]
from reportlab.lib.units import mm  # type: ignore[import-untyped]
from reportlab.pdfbase import pdfmetrics  # type: ignore[import-untyped]
from reportlab.pdfbase.cidfonts import UnicodeCIDFont  # type: ignore[import-untyped]
from reportlab.pdfgen import canvas  # type: ignore[import-untyped]

from linli.billing.models import ReceiptStatus
from linli.billing.money import capitals, yuan
from linli.billing.service import ReceiptView

FONT = "STSong-Light"
METHOD_NAMES = {
    "cash": "现金",
    "card": "刷卡",
    "transfer": "转账",
    "scan": "扫码",
    "prepaid": "预存款",
}
MAX_LINES = 16  # bills listed one by one; the rest are summed on one line
_registered = False


def _font() -> str:
    global _registered
    if not _registered:
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
        _registered = True
    return FONT


def receipt_number(view: ReceiptView) -> str:
    return f"{view.receipt.receipt_no or 0:08d}"


def receipt_pdf(view: ReceiptView) -> bytes:
    """One receipt on an A5 portrait page; the layout flows top-down so long receipts
    (many bills, several tenders) never overprint the totals or the seal area."""
    font = _font()
    out = io.BytesIO()
    width, height = A5
    pdf = canvas.Canvas(out, pagesize=(width, height))
    receipt = view.receipt
    pdf.setTitle(f"收据 {receipt_number(view)}")
    left, right = 12 * mm, width - 12 * mm
    y = height - 16 * mm
    pdf.setFont(font, 15)
    pdf.drawCentredString(width / 2, y, f"{view.company_name} 收款收据")
    pdf.setFont(font, 9)
    y -= 8 * mm
    pdf.drawString(left, y, f"小区: {view.community_name}")
    pdf.drawRightString(right, y, f"No. {receipt_number(view)}")
    y -= 5 * mm
    pdf.drawString(left, y, f"房号: {view.house_label}")
    paid = receipt.paid_at.astimezone(ZoneInfo("Asia/Shanghai")) if receipt.paid_at else None
    pdf.drawRightString(right, y, f"日期: {paid:%Y-%m-%d %H:%M}" if paid else "日期: -")
    y -= 5 * mm
    pdf.drawString(left, y, f"交款人: {receipt.payer_name or '-'}")
    y -= 3 * mm
    pdf.line(left, y, right, y)
    y -= 5 * mm
    pdf.drawString(left, y, "收费项目")
    pdf.drawString(left + 62 * mm, y, "所属期间")
    pdf.drawRightString(right, y, "金额 (元)")
    shown = view.lines[:MAX_LINES]
    for name, period, cents, discount in shown:
        y -= 5 * mm
        pdf.drawString(left, y, name[:24] + (" (优惠)" if discount else ""))
        pdf.drawString(left + 62 * mm, y, f"{period:%Y-%m}")
        pdf.drawRightString(right, y, ("-" if discount else "") + yuan(cents))
    if len(view.lines) > MAX_LINES:
        rest = sum(cents for *_, cents, discount in view.lines[MAX_LINES:] if not discount)
        y -= 5 * mm
        pdf.drawString(left, y, f"… 另有 {len(view.lines) - MAX_LINES} 项")
        pdf.drawRightString(right, y, yuan(rest))
    if receipt.to_prepaid_cents:
        y -= 5 * mm
        pdf.drawString(left, y, "转入预存款")
        pdf.drawRightString(right, y, yuan(receipt.to_prepaid_cents))
    y -= 3 * mm
    pdf.line(left, y, right, y)
    y -= 6 * mm
    pdf.setFont(font, 11)
    pdf.drawString(left, y, f"合计 (大写): {capitals(receipt.amount_cents)}")
    pdf.drawRightString(right, y, f"¥{yuan(receipt.amount_cents)}")
    pdf.setFont(font, 9)
    y -= 6 * mm
    pdf.drawString(left, y, "支付方式:")
    for tender in view.tenders:
        y -= 5 * mm
        reference = f" ({tender.reference})" if tender.reference else ""
        pdf.drawString(
            left + 4 * mm,
            y,
            f"{METHOD_NAMES.get(tender.method, tender.method)} {yuan(tender.amount_cents)}"
            + reference,
        )
    if receipt.status == ReceiptStatus.VOIDED.value:
        y -= 6 * mm
        pdf.drawString(left, y, f"作废原因: {receipt.void_reason}")
        pdf.saveState()
        pdf.setFont(font, 40)
        pdf.setFillColorRGB(0.8, 0.1, 0.1)
        pdf.drawCentredString(width / 2, height / 2, "作废")
        pdf.restoreState()
    # The seal area (盖章处) below everything else, and who took the money.
    y -= 10 * mm
    box_top = min(y, 60 * mm)
    pdf.drawString(left, box_top - 8 * mm, f"收款人: {view.cashier_name or '-'}")
    pdf.setDash(3, 2)
    pdf.rect(right - 40 * mm, box_top - 30 * mm, 40 * mm, 30 * mm)
    pdf.setDash()
    pdf.drawCentredString(right - 20 * mm, box_top - 16 * mm, "(盖章处)")
    pdf.showPage()
    pdf.save()
    return out.getvalue()
