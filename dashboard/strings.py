"""Texts the dashboard scripts show, translated here and handed to the page as JSON.

They keep their `%(name)s` placeholders for the scripts to fill (Jinja's gettext would try
to fill them itself, so they are not translated in the templates).
"""

from __future__ import annotations

from flask_babel import gettext as _


def overview() -> dict[str, str]:
    return {
        "updated": _("Cập nhật lúc %(time)s. Tự làm mới mỗi 60 giây."),
        "failed": _("Không tải được số liệu (%(reason)s). Sẽ thử lại sau 60 giây."),
        "closed": _("Nghỉ"),
        "over": _("quá tải"),
        "officers": _("%(officers)s/%(needed)s cán bộ"),
        "load": _("tải %(percent)s"),
        "wait": _("chờ p90 %(minutes)s phút"),
        "wait_unbounded": _("hàng chờ không giảm được"),
        "no_data": _("chưa có số liệu"),
        "warn_item": _("%(day)s: cần %(needed)s, có %(officers)s cán bộ"),
        "warn_more": _("Xem thêm %(count)s trung tâm"),
        "warn_less": _("Thu gọn"),
        "beyond_frame": _("Ngoài khung bản đồ"),
    }


def dispatch() -> dict[str, str]:
    return {
        "pool": _("Đội cơ động"),
        "km": _("%(km)s km"),
        "minutes": _("%(minutes)s phút"),
        "unbounded": _("quá tải"),
        "plan_id": _("Mã kế hoạch %(id)s · %(moves)s lượt điều động, %(officers)s cán bộ."),
        "loading": _("Đang tính kế hoạch…"),
        "failed": _("Không tải được kế hoạch (%(reason)s). Vui lòng thử lại."),
        "short": _("%(centre)s: còn thiếu %(officers)s cán bộ"),
        "accepted_by": _("Kế hoạch này đã được %(by)s chấp nhận lúc %(at)s."),
        "declined_by": _("Kế hoạch này đã được %(by)s từ chối lúc %(at)s."),
        "someone": _("một cán bộ điều hành"),
        "earlier_accepted": _(
            "Kế hoạch trước đó trong ngày (mã %(plan)s) đã được %(by)s chấp nhận lúc %(at)s."
        ),
        "earlier_declined": _(
            "Kế hoạch trước đó trong ngày (mã %(plan)s) đã được %(by)s từ chối lúc %(at)s."
        ),
        "accepted": _(
            "Đã chấp nhận kế hoạch: %(created)s phân công mới, %(slots)s khung giờ được mở "
            "thêm hoặc nới rộng. Cán bộ được điều động sẽ thấy trung tâm mới khi đăng nhập quầy."
        ),
        "accepted_again": _("Kế hoạch này đã được chấp nhận trước đó; không có gì thay đổi."),
        "declined": _("Đã từ chối kế hoạch. Không có cán bộ nào được điều động."),
        "changed": _(
            "Kế hoạch đã thay đổi kể từ khi bạn xem (có lịch hẹn, cán bộ hoặc phân công mới). "
            "Kế hoạch mới đã được tải lại bên dưới: vui lòng xem lại trước khi quyết định."
        ),
        "error": _("Không thực hiện được: %(detail)s"),
        "working": _("Đang gửi…"),
    }


def centre() -> dict[str, str]:
    return {
        "issued": _("Phát số"),
        "served": _("Đã phục vụ"),
        "no_show": _("Vắng mặt"),
        "wait_p90": _("Chờ p90 (phút)"),
        "count": _("Số lượt"),
        "minutes": _("Phút"),
        "show_table": _("Hiện bảng số liệu"),
        "hide_table": _("Ẩn bảng số liệu"),
        "unknown_field": _("Chưa rõ lĩnh vực"),
    }
