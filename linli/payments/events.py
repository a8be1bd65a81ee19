"""Event types online payments emits through the outbox (ids and cents, no personal data)."""

from __future__ import annotations

ORDER_PAID = "payments.order.paid"  # order_id, house_id, community_id, amount_cents, receipt_id
REFUND_SUCCEEDED = "payments.refund.succeeded"  # refund_id, order_id, house_id, amount_cents
