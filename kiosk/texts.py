"""Words the kiosk shows: priority groups and its own phrasing of domain refusals."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

from core.common.errors import DomainError, InvalidInput
from core.models import PriorityClass
from web.messages import message

PRIORITY_GROUPS: dict[PriorityClass, Any] = {
    PriorityClass.ELDERLY: _l("Người cao tuổi"),
    PriorityClass.DISABILITY: _l("Người khuyết tật"),
    PriorityClass.PREGNANT: _l("Phụ nữ mang thai"),
    PriorityClass.MERITORIOUS: _l("Người có công với cách mạng"),
    PriorityClass.YOUNG_CHILD: _l("Có trẻ nhỏ đi cùng"),
}

# Where the kiosk needs other words than the web pages (no "manage code" here, and a
# citizen standing at the kiosk is told what to do next).
_KIOSK_MESSAGES: dict[str, Any] = {
    "appointment_not_found": _l(
        "Không tìm thấy lịch hẹn với mã và 4 số cuối điện thoại này. Vui lòng kiểm tra lại."
    ),
    "invalid_qr": _l(
        "Mã QR không hợp lệ hoặc đã hết hiệu lực. Vui lòng dùng mã QR mới nhất "
        "hoặc nhập mã đặt lịch."
    ),
    "appointment_other_centre": _l(
        "Lịch hẹn của bạn đặt tại trung tâm dưới đây, không phải trung tâm này. "
        "Vui lòng đến đúng nơi đã hẹn."
    ),
    "appointment_not_active": _l("Lịch hẹn này đã kết thúc hoặc không còn hiệu lực."),
    "too_late": _l(
        "Bạn đã đến muộn quá giờ hẹn. Bạn vẫn có thể lấy số thứ tự thông thường cho thủ tục này."
    ),
    "ticket_not_found": _l("Không tìm thấy số thứ tự này tại trung tâm."),
    "field_not_found": _l("Trung tâm không tiếp nhận lĩnh vực này."),
}

_FIELD_MESSAGES: dict[str, Any] = {
    "required": _l("Vui lòng nhập mã đặt lịch hoặc quét mã QR."),
    "invalid_booking_code": _l("Mã đặt lịch gồm chữ và số, ví dụ K7MZ4QPA."),
    "invalid_last4": _l("Vui lòng nhập đúng 4 số cuối của số điện thoại đã đặt lịch."),
    "form_expired": _l("Màn hình đã hết hạn. Vui lòng chọn lại."),
    "priority_group_required": _l("Vui lòng chọn nhóm ưu tiên của bạn."),
}


def refusal(err: DomainError) -> str:
    """The sentence the kiosk shows for a refusal."""
    if err.code in _KIOSK_MESSAGES:
        return str(_KIOSK_MESSAGES[err.code])
    return message(err.code, **err.details)


def field_errors(err: InvalidInput) -> dict[str, str]:
    """Field name → sentence for each bad field."""
    return {
        name: str(_FIELD_MESSAGES[code]) if code in _FIELD_MESSAGES else message(code)
        for name, code in err.errors.items()
    }


def priority_label(priority: PriorityClass) -> str:
    return str(PRIORITY_GROUPS.get(priority, ""))
