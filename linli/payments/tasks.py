"""Jobs of online payments: close expired orders (and settle any paid meanwhile), follow
up refunds still processing, and reconcile yesterday's trade bills every morning."""

from __future__ import annotations

from linli.core.logging import get_logger
from linli.jobs import job_app
from linli.payments import flows, reconcile

log = get_logger(__name__)

SWEEP_TASK = "linli.payments.tasks.sweep_orders"
RECONCILE_TASK = "linli.payments.tasks.reconcile_daily"


async def sweep() -> int:
    """Every company with a merchant account: expired orders closed, refunds followed up."""
    closed = 0
    for tenant_id in await flows.tenants_with_accounts():
        try:
            closed += await flows.sweep_tenant(tenant_id)
        except Exception:  # one company's provider outage must not stop the others
            log.exception("payments.sweep_failed", tenant_id=str(tenant_id))
    return closed


@job_app.periodic(cron="* * * * *", periodic_id="payments-sweep")
@job_app.task(name=SWEEP_TASK, queue="default", queueing_lock=SWEEP_TASK)
async def sweep_orders(timestamp: int) -> None:
    await sweep()


# Providers publish the previous day's bill from about 09:00 China time (01:00 UTC).
@job_app.periodic(cron="30 2 * * *", periodic_id="payments-reconcile")
@job_app.task(name=RECONCILE_TASK, queue="default", queueing_lock=RECONCILE_TASK)
async def reconcile_daily(timestamp: int) -> None:
    await reconcile.daily()
