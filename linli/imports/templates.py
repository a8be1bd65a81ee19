"""Downloadable import templates (导入模板): Chinese headers, a sample row, notes.

Generated on request with openpyxl, so a template always matches the columns
this version reads; nothing binary is kept in the repository.
"""

from __future__ import annotations

import io

from openpyxl import Workbook
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font, PatternFill

from linli.imports import kinds as k
from linli.imports import normalize as n
from linli.imports.kinds import ImportKind

SHEET_TITLES = {
    ImportKind.HOUSES: "房屋",
    ImportKind.RESIDENTS: "住户",
    ImportKind.VEHICLES: "车辆",
    ImportKind.STAFF: "员工档案",
    ImportKind.PARKING: "车位",
    ImportKind.FACILITIES: "公共设施",
}

NOTES: dict[str, str] = {
    "community": "小区编码（也可填小区名称）；须是您有权限的小区",
    "building_no": "楼栋号，如 3 或 3号楼；也可不填楼栋、单元，把房号写成 3-2-1201 或 3栋2单元1201",
    "unit_no": "单元号，没有单元可不填",
    "house_no": "房号，如 1201；或完整写法 3-2-1201",
    "floor": "楼层，地下层写 B1 或 -1",
    "building_area": "建筑面积，单位㎡，两位小数",
    "inner_area": "套内面积，单位㎡，可不填",
    "house_type": "/".join(n.HOUSE_TYPE.label(v) for v in n.HOUSE_TYPE.values) + "，默认住宅",
    "status": "/".join(n.HOUSE_STATUS.label(v) for v in n.HOUSE_STATUS.values) + "，默认已交付",
    "name": "姓名",
    "phone": "11 位手机号",
    "id_card": "18 位身份证号；手机号和身份证号至少填一项",
    "gender": "男/女",
    "birth_date": "日期，如 1985-06-01 或 1985年6月1日",
    "relation": "/".join(n.RELATION.label(v) for v in n.RELATION.values) + "，默认业主",
    "lease_start": "租户的租期开始日期",
    "lease_end": "租户的租期结束日期",
    "plate": "车牌号，支持新能源车牌",
    "owner_phone": "车主手机号",
    "brand": "品牌",
    "color": "颜色",
    "department": "部门",
    "position": "岗位",
    "employment_type": "/".join(n.EMPLOYMENT.label(v) for v in n.EMPLOYMENT.values),
    "hire_date": "入职日期",
    "employee_no": "工号，每位员工唯一；重复导入按工号更新",
    "education": "/".join(n.EDUCATION.label(v) for v in n.EDUCATION.values),
    "certificates": "证书名称，可写成 名称:证书编号；多个证书用顿号、逗号分隔",
    "communities": "服务的小区编码，多个用顿号、逗号分隔",
    "area_name": "停车场名称，如 地下车库B1；不存在时自动创建",
    "underground": "是/否，不填则不改",
    "space_no": "车位号，如 B1-001；同一停车场内唯一，重复导入按车位号更新",
    "usage": "/".join(n.PARKING_USAGE.label(v) for v in n.PARKING_USAGE.values)
    + "；填了持有房屋或手机号时默认产权，否则默认临时",
    "area_m2": "车位面积，单位㎡，可不填",
    "kind": "/".join(n.FACILITY_KIND.label(v) for v in n.FACILITY_KIND.values) + "，默认其他",
    "location": "位置说明，如 3栋大堂",
}
# The parking sheet's holder columns say whose space it is, not where a resident lives.
KIND_NOTES: dict[ImportKind, dict[str, str]] = {
    ImportKind.PARKING: {
        "building_no": "持有房屋的楼栋（产权或租赁车位可填）",
        "unit_no": "持有房屋的单元",
        "house_no": "持有房屋的房号，或完整写法 3-2-1201",
        "owner_phone": "持有人（业主或承租人）的手机号，须已在住户档案中",
        "lease_start": "租赁车位的租期开始日期",
        "lease_end": "租赁车位的租期结束日期",
    },
    ImportKind.FACILITIES: {
        "building_no": "设施所在楼栋，须已存在；可不填",
        "name": "设施名称，同一小区内唯一",
    },
}

# Long digit strings must stay text in Excel, or it shows 1.38E+10 and drops digits.
TEXT_FIELDS = frozenset(
    {
        "phone",
        "id_card",
        "owner_phone",
        "house_no",
        "building_no",
        "unit_no",
        "employee_no",
        "space_no",
    }
)

_HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
_SAMPLE_FONT = Font(color="808080", italic=True)


def note_for(kind: ImportKind, fieldname: str) -> str:
    return KIND_NOTES.get(kind, {}).get(fieldname) or NOTES.get(fieldname, "")


def header_text(column: k.Column) -> str:
    return f"*{column.header}" if column.required else column.header


def build_template(kind: ImportKind) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = SHEET_TITLES[kind]
    columns = k.TEMPLATE_COLUMNS[kind]
    for index, column in enumerate(columns, start=1):
        cell = sheet.cell(row=1, column=index, value=header_text(column))
        cell.font = Font(bold=True, color="C00000" if column.required else "000000")
        cell.fill = _HEADER_FILL
        cell.alignment = Alignment(horizontal="center")
        note = note_for(kind, column.field)
        if note:
            cell.comment = Comment(note, "linli")
        sample = sheet.cell(
            row=2, column=index, value=column.example if column.example != "" else None
        )
        sample.font = _SAMPLE_FONT
        letter = cell.column_letter
        sheet.column_dimensions[letter].width = max(10, len(column.header) * 2 + 4)
        if column.field in TEXT_FIELDS:
            for row in range(2, 1001):
                sheet.cell(row=row, column=index).number_format = "@"
    sheet.freeze_panes = "A2"

    notes = workbook.create_sheet("填写说明")
    notes.append(["列", "必填", "说明"])
    for column in columns:
        notes.append([column.header, "是" if column.required else "", note_for(kind, column.field)])
    notes.append([])
    notes.append(["第 2 行是示例（灰色），导入前请删除或改成真实数据。"])
    notes.append(["同一文件可重复导入：已存在的数据按自然键更新，不会重复创建。"])
    notes.column_dimensions["A"].width = 14
    notes.column_dimensions["C"].width = 70

    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
