"""Human messages for domain error codes, in Vietnamese with English via Babel."""

from __future__ import annotations

from typing import Any

from flask_babel import gettext
from flask_babel import lazy_gettext as _l

MESSAGES: dict[str, Any] = {
    "not_found": _l("Không tìm thấy."),
    # Centre floor: kiosk, counters, tickets.
    "service_not_found": _l("Không tìm thấy quầy dịch vụ này."),
    "ticket_not_found": _l("Không tìm thấy số thứ tự này."),
    "counter_not_found": _l("Không tìm thấy quầy này."),
    "centre_closed_now": _l(
        "Trung tâm hiện không làm việc. Vui lòng quay lại trong giờ hành chính."
    ),
    "remote_per_day": _l("Hôm nay bạn đã lấy số từ xa rồi."),
    "appointment_cancelled": _l("Lịch hẹn này đã được huỷ."),
    "appointment_other_centre": _l(
        "Lịch hẹn này đặt tại %(centre_name)s (%(centre_address)s), không phải trung tâm này."
    ),
    "appointment_other_day": _l("Lịch hẹn này vào ngày %(date)s, không phải hôm nay."),
    "too_early": _l("Bạn đến sớm. Vui lòng quay lại để xác nhận từ %(time)s."),
    "too_late": _l("Đã quá giờ hẹn quá lâu. Vui lòng lấy số thứ tự thông thường."),
    "invalid_qr": _l("Mã QR không hợp lệ hoặc không phải của hệ thống này."),
    "check_in_required": _l("Hãy quét mã QR hoặc nhập mã đặt lịch cùng 4 số cuối điện thoại."),
    "invalid_phone_last4": _l(
        "Hãy nhập đúng 4 chữ số cuối của số điện thoại đã dùng khi đặt lịch."
    ),
    "invalid_booking_code": _l("Mã đặt lịch gồm chữ và số, ví dụ K7MZ4QPA."),
    "check_in_not_found": _l(
        "Không tìm thấy lịch hẹn với mã đặt lịch và 4 số cuối điện thoại này. Vui lòng kiểm tra lại."
    ),
    "procedure_or_service_required": _l("Hãy chọn một thủ tục hoặc một dịch vụ."),
    "counter_closed": _l("Quầy đang đóng. Hãy mở quầy trước khi gọi số."),
    "counter_busy": _l(
        "Quầy đang gọi số %(label)s. Hãy bắt đầu phục vụ, gọi lại hoặc báo vắng trước."
    ),
    "queue_busy": _l("Hàng chờ đang bận. Vui lòng thử lại."),
    "nothing_to_recall": _l("Không có số nào đang được gọi tại quầy này."),
    "ticket_wrong_state": _l("Số %(label)s không ở trạng thái cho phép thao tác này."),
    "transfer_target_required": _l(
        "Hãy chọn đúng một nơi chuyển đến: dịch vụ, quầy hoặc trung tâm."
    ),
    "transfer_other_centre_service": _l("Dịch vụ được chọn thuộc trung tâm khác."),
    "transfer_other_centre_counter": _l("Quầy được chọn thuộc trung tâm khác."),
    "counter_taken": _l("Quầy số %(number)s đang do cán bộ khác sử dụng."),
    "counter_has_ticket": _l(
        "Quầy đang phục vụ số %(label)s. Hãy hoàn thành hoặc chuyển trước khi đóng quầy."
    ),
    "counter_serves_nothing": _l("Quầy được chọn chưa phục vụ dịch vụ nào."),
    "counter_not_yours": _l(
        "Quầy số %(number)s đang do cán bộ %(name)s mở. Hãy chọn quầy khác hoặc nhờ họ đóng quầy."
    ),
    "busy_elsewhere": _l(
        "Bạn đang có số %(label)s tại quầy số %(number)s. Hãy hoàn thành, chuyển hoặc báo vắng số đó trước khi sang quầy khác."
    ),
    "no_current_ticket": _l("Quầy chưa có số nào đang được gọi hoặc đang phục vụ."),
    "ticket_not_current": _l(
        "Số trên màn hình đã thay đổi (quầy đang có số %(label)s). Vui lòng xem lại rồi thao tác."
    ),
    "transfer_target_not_found": _l("Không tìm thấy nơi chuyển đến đã chọn."),
    "transfer_same_counter": _l("Không thể chuyển số về chính quầy này."),
    "invalid_login": _l("Tên đăng nhập hoặc mật khẩu không đúng."),
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
    "suspended": _l(
        "Bạn đã nhiều lần không đến theo lịch hẹn nên tạm thời không thể đặt lịch hay lấy số "
        "từ xa đến %(time)s ngày %(date)s."
    ),
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
    "slot_required": _l("Vui lòng chọn một khung giờ."),
    "confirm_required": _l("Vui lòng đánh dấu ô xác nhận để huỷ lịch hẹn."),
    "invalid_integer": _l("Giá trị phải là một số nguyên."),
    "invalid_date": _l("Ngày phải có dạng YYYY-MM-DD."),
    "invalid_number": _l("Giá trị phải là một số."),
    "bad_request": _l("Yêu cầu không hợp lệ."),
    "invalid_characters": _l(
        "Nội dung gửi lên có ký tự điều khiển (như ký tự rỗng hoặc xuống dòng) không được phép."
    ),
    "body_too_large": _l("Nội dung gửi lên quá lớn."),
    "unauthorized": _l("Bạn cần đăng nhập hoặc cung cấp mã truy cập."),
    # Staff API tokens.
    "token_invalid": _l("Mã truy cập không hợp lệ, đã hết hạn hoặc đã bị thu hồi."),
    "token_days": _l("Số ngày hiệu lực của mã truy cập nằm ngoài khoảng cho phép."),
    "staff_inactive": _l("Tài khoản cán bộ này đã bị khoá."),
    "forbidden": _l("Bạn không có quyền thực hiện thao tác này."),
    "method_not_allowed": _l("Phương thức không được hỗ trợ."),
    "server_error": _l("Đã có lỗi ở máy chủ. Vui lòng thử lại sau."),
    "database_unavailable": _l(
        "Hệ thống đang kết nối lại cơ sở dữ liệu. Vui lòng thử lại sau vài giây."
    ),
    "csrf": _l("Phiên làm việc đã hết hạn. Vui lòng tải lại trang và thử lại."),
    # Operations API: dispatch plans.
    "plan_changed": _l("Kế hoạch điều động đã thay đổi. Vui lòng xem lại kế hoạch mới."),
    "staff_already_assigned": _l("Một cán bộ trong kế hoạch đã được điều động nơi khác."),
    "plan_already_accepted": _l("Kế hoạch này đã được chấp nhận nên không thể từ chối."),
    # Booking API: request parsing, suggestions, calendar file.
    "invalid_json": _l("Nội dung gửi lên không phải JSON hợp lệ."),
    "invalid_value": _l("Giá trị không hợp lệ."),
    "out_of_range": _l("Giá trị nằm ngoài khoảng cho phép."),
    "too_long": _l("Nội dung quá dài."),
    "invalid_choice": _l("Giá trị không nằm trong các lựa chọn cho phép."),
    "invalid_idempotency_key": _l("Idempotency-Key phải gồm 1 đến 64 ký tự ASCII in được."),
    "reason_nearest": _l("Gần bạn nhất"),
    "reason_earliest": _l("Có lịch sớm nhất"),
    "reason_least_loaded": _l("Ít người đặt nhất"),
    "reason_balanced": _l("Cân bằng giữa khoảng cách, thời gian chờ và độ đông"),
    "ics_summary": _l("Lịch hẹn làm thủ tục: %(procedure)s"),
    "ics_description": _l(
        "Mã đặt lịch: %(booking_code)s. Quầy: %(service)s. Vui lòng mang theo CCCD và mã QR."
    ),
}


def message(code: str, /, **details: Any) -> str:
    """The message for an error code in the current locale."""
    template = MESSAGES.get(code)
    if template is None:
        return gettext("Yêu cầu không hợp lệ.")
    text = str(template)
    try:
        return text % details if "%(" in text else text
    except (KeyError, ValueError):
        return text
