"""Texts of the referral measures page (``key -> (zh, en)``): the county bureau's and a
facility's view of two-way referral, per facility and month."""

from __future__ import annotations

MESSAGES: dict[str, tuple[str, str]] = {
    "ref.measures.nav": ("转诊统计", "Referral measures"),
    "ref.measures.title": ("双向转诊统计", "Two-way referral measures"),
    "ref.measures.lead": ("按机构、按月统计上转与下转人次、接收时长、预留号源使用率、爽约率和下转患者14天内随访率。",
                          "Per facility and month: up- and down-referrals, time to acceptance, use of the reserved"
                          " places, no-shows, and down-referred patients followed up within 14 days."),
    "ref.measures.division": ("行政区划", "Division"),
    "ref.measures.facility_scope": ("本机构", "My facility"),
    "ref.measures.from": ("起始月份", "From month"),
    "ref.measures.to": ("截止月份", "To month"),
    "ref.measures.show": ("统计", "Show"),
    "ref.measures.period": ("{since} 至 {until}", "{since} to {until}"),
    "ref.measures.none": ("所选范围和期间内没有转诊记录。", "No referral in this scope and period."),
    "ref.measures.no_scope": ("您的账号没有可统计的机构或行政区划。",
                              "Your account has no facility or division to measure."),
    "ref.measures.bad_month": ("月份格式应为 YYYY-MM，已改用默认期间。",
                               "Months are written YYYY-MM; the default period is shown."),
    # the summary
    "ref.measures.summary": ("期间合计", "Period totals"),
    "ref.measures.chart": ("每月上转与下转人次", "Up- and down-referrals per month"),
    "ref.measures.chart_facility": ("{name}：每月上转与下转人次", "{name}: up- and down-referrals per month"),
    "ref.measures.legend.up": ("上转", "Up"),
    "ref.measures.legend.down": ("下转", "Down"),
    "ref.measures.monthly": ("各月合计", "Totals per month"),
    "ref.measures.facilities": ("各机构（期间合计）", "Facilities (period totals)"),
    "ref.measures.facility_months": ("{name}：各月", "{name}: per month"),
    "ref.measures.back_to_all": ("返回全部机构", "All facilities"),
    "ref.measures.by_month": ("按月", "By month"),
    "ref.measures.total": ("合计", "Total"),
    # columns
    "ref.measures.col.facility": ("机构", "Facility"),
    "ref.measures.col.level": ("级别", "Level"),
    "ref.measures.col.month": ("月份", "Month"),
    "ref.measures.col.up_sent": ("上转转出", "Up, sent"),
    "ref.measures.col.up_received": ("上转接收", "Up, received"),
    "ref.measures.col.down_sent": ("下转转出", "Down, sent"),
    "ref.measures.col.down_received": ("下转接收", "Down, received"),
    "ref.measures.col.accept_median": ("接收时长中位数(h)", "Acceptance median (h)"),
    "ref.measures.col.accept_p90": ("接收时长P90(h)", "Acceptance p90 (h)"),
    "ref.measures.col.utilisation": ("预留号源使用率", "Reserved places used"),
    "ref.measures.col.no_show": ("爽约率", "No-show rate"),
    "ref.measures.col.followup": ("14天内随访率", "Followed up ≤14 days"),
    "ref.measures.stat.accept": ("接收时长 中位数 / P90（小时）", "Acceptance median / p90 (h)"),
    "ref.measures.of": ("{n} / {d}", "{n} of {d}"),
    # how each measure is defined (referrals/measures.py)
    "ref.measures.definitions": ("指标口径", "Definitions"),
    "ref.measures.def.counts": ("上转、下转人次按提交月份计；下转含回转（按回转月份）与直接下转，"
                                "即国考“下转患者人次数”。",
                                "Up and down counts by the month submitted; down-referrals are back-referrals (by the"
                                " month issued) plus direct down-referrals, the national indicator 下转患者人次数."),
    "ref.measures.def.accept": ("接收时长：提交至接收的小时数，按接收机构统计，不含急诊转诊。",
                                "Acceptance: hours from submission to acceptance, at the receiving facility;"
                                " emergencies are left out."),
    "ref.measures.def.utilisation": ("预留号源使用率：转诊预约的预留号源数 ÷ 当月出诊场次的预留号源总数；"
                                     "回放后公众预约的不计。",
                                     "Reserved places used: places booked by a referral ÷ reserved places of the"
                                     " month's sessions; places released to the public and booked there do not count."),
    "ref.measures.def.no_show": ("爽约率：未到诊 ÷ 已到预约时间并登记到诊或未到诊的转诊。",
                                 "No-show rate: no-shows ÷ referrals that reached their appointment (arrived or"
                                 " no-show)."),
    "ref.measures.def.followup": ("14天内随访率：下转（回转及直接下转）后14天内完成随访或到基层就诊的比例，"
                                  "仅计已到期者。",
                                  "Followed up within 14 days: share of down-referrals (back-referrals and direct"
                                  " ones) followed up, or seen in primary care, within 14 days; only those already"
                                  " due count."),
}
