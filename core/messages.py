"""Human messages for domain error codes, in Vietnamese with English via Babel."""

from __future__ import annotations

from typing import Any

from flask_babel import gettext
from flask_babel import lazy_gettext as _l

MESSAGES: dict[str, Any] = {
    "not_found": _l("Không tìm thấy."),
    "procedure_not_found": _l("Không tìm thấy thủ tục này."),
    "centre_not_found": _l("Không tìm thấy trung tâm này."),
    "slot_not_found": _l("Không tìm thấy khung giờ này."),
    "appointment_not_found": _l("Mã đặt lịch hoặc mã quản lý không đúng."),
    "procedure_not_taken": _l("Trung tâm này không tiếp nhận thủ tục đã chọn."),
    "slot_past": _l("Khung giờ này đã qua. Vui lòng chọn khung giờ khác."),
    "centre_closed": _l("Trung tâm nghỉ vào ngày này. Vui lòng chọn ngày khác."),
    "slot_not_open": _l("Khung giờ này chưa mở để đặt lịch."),
    "slot_full": _l("Khung giờ này vừa hết chỗ. Vui lòng chọn một khung giờ khác bên dưới."),
    "appointment_not_active": _l("Lịch hẹn này không còn hiệu lực để thay đổi."),
    "appointment_changed": _l("Lịch hẹn vừa được thay đổi ở nơi khác. Vui lòng tải lại trang."),
    "idempotency_key_reused": _l("Yêu cầu này đã được dùng cho một người khác."),
    "suspended": _l("Bạn tạm thời không thể đặt lịch do nhiều lần không đến theo lịch hẹn."),
    "too_many_active": _l("Bạn đã có %(limit)s lịch hẹn đang chờ. Hãy huỷ bớt trước khi đặt thêm."),
    "one_per_procedure_day": _l("Bạn đã có lịch hẹn cho thủ tục này trong ngày đã chọn."),
    "rate_limited": _l("Bạn thao tác quá nhanh. Vui lòng thử lại sau ít phút."),
    "invalid": _l("Thông tin chưa hợp lệ. Vui lòng kiểm tra các ô được đánh dấu."),
    "invalid_name": _l("Họ và tên cần từ 2 đến 120 chữ cái, không chứa chữ số."),
    "invalid_phone": _l(
        "Số điện thoại di động chưa đúng (10 chữ số, bắt đầu bằng 03, 05, 07, 08 hoặc 09)."
    ),
    "invalid_citizen_id": _l("Số CCCD chưa đúng: gồm 12 chữ số theo cấu trúc của Bộ Công an."),
    "invalid_email": _l("Địa chỉ email chưa đúng."),
    "consent_required": _l("Bạn cần đồng ý cho phép xử lý dữ liệu cá nhân để đặt lịch."),
    "required": _l("Vui lòng nhập thông tin này."),
    "invalid_integer": _l("Giá trị phải là một số nguyên."),
    "invalid_date": _l("Ngày phải có dạng YYYY-MM-DD."),
    "invalid_number": _l("Giá trị phải là một số."),
    "bad_request": _l("Yêu cầu không hợp lệ."),
    "unauthorized": _l("Bạn cần đăng nhập hoặc cung cấp mã truy cập."),
    "forbidden": _l("Bạn không có quyền thực hiện thao tác này."),
    "method_not_allowed": _l("Phương thức không được hỗ trợ."),
    "server_error": _l("Đã có lỗi ở máy chủ. Vui lòng thử lại sau."),
    "csrf": _l("Phiên làm việc đã hết hạn. Vui lòng tải lại trang và thử lại."),
}


def message(code: str, **details: Any) -> str:
    """The message for an error code in the current locale."""
    template = MESSAGES.get(code)
    if template is None:
        return gettext("Yêu cầu không hợp lệ.")
    text = str(template)
    try:
        return text % details if "%(" in text else text
    except (KeyError, ValueError):
        return text
