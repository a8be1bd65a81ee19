"""Notification templates: one per kind of message, in zh-CN and English.

A template gives the title and body in each language (``str.format`` fields
filled from the notification's ``params``; a missing field renders empty, so
a producer that sends fewer params than the template names still gets a
readable message), the channels used when the caller names none, the rate
limit per recipient (``limits`` notation, e.g. ``"5/hour"``) that outside
channels obey, and the field names of the WeChat template message.

Other domains add their kinds with :func:`register` in their own module, or
ask for one here; the console lists them all (``/console/notifications/templates``).
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from limits import RateLimitItem, parse

from linli.core.errors import ValidationFailed
from linli.notifications.models import Channel

LOCALES = ("zh_CN", "en")
DEFAULT_LOCALE = "zh_CN"


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


_formatter = string.Formatter()


def fill(text: str, params: Mapping[str, Any]) -> str:
    """``text`` with ``{name}`` fields from params; unknown or odd fields render empty."""
    values = _Blank({k: v for k, v in params.items() if not isinstance(v, (dict, list))})
    try:
        return _formatter.vformat(text, (), values)
    except (ValueError, IndexError, KeyError, AttributeError):
        return text


@dataclass(frozen=True)
class Template:
    key: str
    label: Mapping[str, str]  # what the kind is called on the preferences page
    title: Mapping[str, str]  # locale -> text
    body: Mapping[str, str]
    channels: tuple[Channel, ...] = (Channel.PORTAL,)
    rate_limit: str = "10/hour"
    # WeChat template message fields (keyword -> param name, or "title"/"body").
    wechat_fields: Mapping[str, str] = field(
        default_factory=lambda: {"first": "title", "keyword1": "body"}
    )

    def limit(self) -> RateLimitItem:
        return parse(self.rate_limit)

    def render(self, params: Mapping[str, Any], locale: str) -> tuple[str, str]:
        lang = locale if locale in self.title else DEFAULT_LOCALE
        return fill(self.title[lang], params), fill(self.body[lang], params)

    @property
    def sms_template(self) -> str:
        """Name of the matching template registered at the SMS gateway (短信模板)."""
        return "linli_" + self.key.replace(".", "_")


_registry: dict[str, Template] = {}


def register(template: Template) -> Template:
    for locale in LOCALES:
        if not all(locale in text for text in (template.label, template.title, template.body)):
            raise ValueError(f"template {template.key} lacks {locale}")
    template.limit()  # a typo in the limit fails at import, not at the first message
    _registry[template.key] = template
    return template


def get(key: str) -> Template:
    template = _registry.get(key)
    if template is None:
        raise ValidationFailed(
            "Unknown notification template.", code="unknown_template", template=key
        )
    return template


def all_templates() -> list[Template]:
    return sorted(_registry.values(), key=lambda t: t.key)


_BOTH = (Channel.PORTAL, Channel.WECHAT)
_ALL = (Channel.PORTAL, Channel.SMS, Channel.WECHAT)

for _template in (
    Template(
        "message",
        {"zh_CN": "通知", "en": "Messages"},
        {"zh_CN": "{title}", "en": "{title}"},
        {"zh_CN": "{body}", "en": "{body}"},
        channels=(Channel.PORTAL,),
        rate_limit="20/hour",
    ),
    Template(
        "announcement.published",
        {"zh_CN": "小区公告", "en": "Announcements"},
        {"zh_CN": "小区公告:{title}", "en": "Notice: {title}"},
        {
            "zh_CN": "{community}发布了新公告《{title}》,请在住户服务中查看。",
            "en": "{community} posted a notice, “{title}”. Open the resident portal to read it.",
        },
        channels=(Channel.PORTAL,),
        rate_limit="20/day",
        wechat_fields={"first": "title", "keyword1": "community", "keyword2": "published"},
    ),
    Template(
        "workorder.assigned",
        {"zh_CN": "新派工单", "en": "Work order assigned to me"},
        {"zh_CN": "新派工单:{number}", "en": "Work order {number} assigned to you"},
        {
            "zh_CN": "工单 {number} 已派给您,请在工单列表中查看并接单。",
            "en": "Work order {number} was assigned to you. Open your queue to accept it.",
        },
        channels=_BOTH,
        wechat_fields={"first": "title", "keyword1": "number", "keyword2": "body"},
    ),
    Template(
        "workorder.finished",
        {"zh_CN": "报修完成", "en": "Repair finished"},
        {"zh_CN": "报修已完成:{number}", "en": "Repair {number} is done"},
        {
            "zh_CN": "您的报修 {number} 已处理完成,请在住户服务中确认并评价。",
            "en": "Your repair {number} is done. Please confirm and rate it in the portal.",
        },
        channels=_BOTH,
        wechat_fields={"first": "title", "keyword1": "number", "keyword2": "body"},
    ),
    Template(
        "workorder.reopened",
        {"zh_CN": "工单被重新打开", "en": "Work order reopened"},
        {"zh_CN": "工单被重新打开:{number}", "en": "Work order {number} was reopened"},
        {
            "zh_CN": "住户对工单 {number} 的处理不满意,工单已重新打开,请跟进。",
            "en": "The resident was not satisfied with work order {number}; it is open again.",
        },
        channels=_BOTH,
        wechat_fields={"first": "title", "keyword1": "number", "keyword2": "body"},
    ),
    Template(
        "workorder.sla_warning",
        {"zh_CN": "工单即将超时", "en": "Work order about to breach its SLA"},
        {"zh_CN": "工单即将超时:{number}", "en": "Work order {number} is about to breach its SLA"},
        {
            "zh_CN": "工单 {number} 将于 {due} 超时,请尽快处理。",
            "en": "Work order {number} breaches its SLA at {due}. Please act now.",
        },
        channels=_ALL,
        rate_limit="30/hour",
        wechat_fields={"first": "title", "keyword1": "number", "keyword2": "due"},
    ),
    Template(
        "billing.reminder",
        {"zh_CN": "缴费提醒", "en": "Payment reminders"},
        {"zh_CN": "缴费提醒", "en": "Payment reminder"},
        {
            "zh_CN": "您的房屋{house}有{amount}元费用待缴,请于{due}前缴纳。",
            "en": "House {house} has CNY {amount} to pay; please pay by {due}.",
        },
        channels=_ALL,
        rate_limit="3/day",
        wechat_fields={"first": "title", "keyword1": "house", "keyword2": "amount"},
    ),
    Template(
        "parcel.arrived",
        {"zh_CN": "快递到达", "en": "Parcels"},
        {"zh_CN": "快递到了", "en": "A parcel has arrived"},
        {
            "zh_CN": "您的快递已到{place},取件码{code}。",
            "en": "Your parcel is at {place}; pick-up code {code}.",
        },
        channels=_BOTH,
        rate_limit="30/day",
        wechat_fields={"first": "title", "keyword1": "place", "keyword2": "code"},
    ),
    Template(
        "visitor.arrived",
        {"zh_CN": "访客到访", "en": "Visitors"},
        {"zh_CN": "访客到访", "en": "Your visitor has arrived"},
        {
            "zh_CN": "访客{visitor}已于{time}到达{gate}。",
            "en": "{visitor} arrived at {gate} at {time}.",
        },
        channels=_BOTH,
        rate_limit="30/day",
        wechat_fields={"first": "title", "keyword1": "visitor", "keyword2": "time"},
    ),
):
    register(_template)
