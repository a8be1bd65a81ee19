"""Event types the billing domain emits through the outbox.

Payloads carry ids and amounts in cents, never personal data. The online-payment
issue listens to ``billing.receipt.paid`` (e.g. to close its order) and calls
:func:`linli.billing.service.confirm_online_payment` when a scan-to-pay charge is paid.
"""

from __future__ import annotations

RUN_ISSUED = "billing.run.issued"  # run_id, community_id, bills, total_cents
RUN_REVERTED = "billing.run.reverted"  # run_id, community_id
RECEIPT_PAID = "billing.receipt.paid"  # receipt_id, house_id, community_id, amount_cents
RECEIPT_VOIDED = "billing.receipt.voided"  # receipt_id, house_id
