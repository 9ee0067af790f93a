"""Texts of the CDC dashboard (``/surveillance``, 传染病监测预警): ``key -> (zh, en)``."""

from __future__ import annotations

MESSAGES: dict[str, tuple[str, str]] = {
    "surv.dash.nav": ("监测预警", "Surveillance"),
    "surv.dash.title": ("传染病监测预警", "Infectious-disease surveillance"),
    "surv.dash.lead": ("法定传染病报告、多点触发监测与预警信号响应一览（仅统计数据，不含个人信息）。",
                       "Notifiable-disease reports, multi-point surveillance feeds and the response to warning"
                       " signals at a glance (counts only, no personal data)."),
    "surv.dash.scope": ("统计范围：{names}", "Scope: {names}"),
    "surv.dash.scope_all": ("全部辖区（{n}个区县）", "all counties in scope ({n})"),
    "surv.dash.period": ("{since} 至 {until}", "{since} to {until}"),
    "surv.dash.no_scope": ("您的账号没有可查看的辖区（需在县区或上级行政区划上授予监测统计权限）。",
                           "Your account has no county to show (surveillance statistics are granted on a county"
                           " or a division above it)."),
    # the form
    "surv.dash.county": ("区县", "County"),
    "surv.dash.all_counties": ("全部辖区", "All counties in scope"),
    "surv.dash.stream": ("病种 / 监测指标", "Disease / feed metric"),
    "surv.dash.group_cases": ("法定传染病", "Notifiable diseases"),
    "surv.dash.group_feeds": ("多点触发监测", "Multi-point surveillance feeds"),
    "surv.dash.since": ("起始日期", "From"),
    "surv.dash.until": ("截止日期", "To"),
    "surv.dash.interval": ("统计单位", "Interval"),
    "surv.dash.daily": ("按日", "Daily"),
    "surv.dash.weekly": ("按周", "Weekly"),
    "surv.dash.colour": ("地图着色", "Map colour"),
    "surv.dash.colour.signals": ("未关闭信号", "Open signals"),
    "surv.dash.colour.cases": ("报告病例数", "Reported cases"),
    "surv.dash.show": ("查询", "Show"),
    "surv.dash.bad_input": ("参数格式有误（日期为 YYYY-MM-DD），已改用默认值。",
                            "Some parameters were malformed (dates are YYYY-MM-DD); defaults are shown."),
    # KPI tiles
    "surv.dash.kpis": ("响应与报告指标", "Response and reporting indicators"),
    "surv.dash.kpi.open": ("当前未关闭信号", "Signals open now"),
    "surv.dash.kpi.response": ("信号响应率", "Signal response rate"),
    "surv.dash.kpi.within_24h": ("24小时内响应率", "Responded within 24 h"),
    "surv.dash.kpi.median": ("响应时间中位数", "Median response time"),
    "surv.dash.kpi.suspected": ("疑似事件比例", "Suspected-event rate"),
    "surv.dash.kpi.report": ("报告及时率", "Report timeliness"),
    "surv.dash.kpi.review": ("审核及时率", "Review timeliness"),
    "surv.dash.of": ("{n} / {d}", "{n} of {d}"),
    "surv.dash.hours": ("{h} 小时", "{h} h"),
    "surv.dash.signals_n": ("{n} 个信号", "{n} signals"),
    # signals by status
    "surv.dash.signals": ("预警信号（期间内产生）", "Warning signals detected in the period"),
    "surv.dash.signals_total": ("共 {n} 个", "{n} in all"),
    "surv.dash.by_stream": ("按病种 / 监测指标", "By disease or feed metric"),
    "surv.dash.by_method": ("按预警方法", "By method"),
    "surv.dash.col.stream": ("病种 / 指标", "Disease / metric"),
    "surv.dash.col.signals": ("信号数", "Signals"),
    "surv.dash.col.open": ("未关闭", "Open"),
    "surv.dash.col.method": ("方法", "Method"),
    "surv.dash.no_signals": ("期间内没有预警信号。", "No signal in this period."),
    "surv.dash.status.generated": ("已生成", "Generated"),
    "surv.dash.status.notified": ("已通知", "Notified"),
    "surv.dash.status.verified_excluded": ("核实排除", "Excluded on verification"),
    "surv.dash.status.suspected": ("疑似事件", "Suspected event"),
    "surv.dash.status.field_investigation": ("现场调查", "Field investigation"),
    "surv.dash.status.confirmed": ("确认暴发", "Confirmed outbreak"),
    "surv.dash.status.excluded": ("调查排除", "Excluded after investigation"),
    "surv.dash.status.closed": ("已关闭", "Closed"),
    "surv.dash.method.fixed": ("固定阈值法", "Fixed threshold"),
    "surv.dash.method.mpm": ("移动百分位数法", "Moving percentile"),
    "surv.dash.method.ears_c1": ("EARS C1", "EARS C1"),
    "surv.dash.method.ears_c2": ("EARS C2", "EARS C2"),
    "surv.dash.method.ears_c3": ("EARS C3", "EARS C3"),
    "surv.dash.method.cusum": ("累积和控制图", "CUSUM"),
    "surv.dash.method.farrington": ("Farrington法", "Farrington"),
    "surv.dash.method.noufaily": ("改进Farrington法", "Improved Farrington"),
    "surv.dash.method.scan": ("时空扫描", "Space-time scan"),
    # the map
    "surv.dash.map": ("辖区预警地图", "Map of the counties"),
    "surv.dash.map_note": ("示意图：无离线行政边界，各区县以其医疗卫生机构坐标中心的泰森多边形表示。",
                           "Schematic: without offline boundaries, each county is the Voronoi cell around the"
                           " centre of its facilities' coordinates."),
    "surv.dash.map_unplaced": ("无坐标、未绘制的区县：{names}", "Counties without coordinates, not drawn: {names}"),
    "surv.dash.map_out": ("辖区外", "Outside your scope"),
    "surv.dash.map_cell": ("{name}：未关闭信号 {open}，期间信号 {signals}，报告病例 {cases}",
                           "{name}: {open} open signals, {signals} signals and {cases} cases in the period"),
    # top diseases
    "surv.dash.top": ("近7天报告病例前十位（与去年同期比较）", "Top diseases of the last 7 days against last year"),
    "surv.dash.top_period": ("{since} 至 {until}；去年同期 {ago_since} 至 {ago_until}",
                             "{since} to {until}; last year {ago_since} to {ago_until}"),
    "surv.dash.col.disease": ("病种", "Disease"),
    "surv.dash.col.week": ("近7天", "Last 7 days"),
    "surv.dash.col.last_year": ("去年同期", "Last year"),
    "surv.dash.col.change": ("变化", "Change"),
    "surv.dash.no_cases": ("近7天及去年同期均无报告病例。", "No case in the last 7 days nor a year earlier."),
    "surv.dash.new": ("新出现", "new"),
    # the curve
    "surv.dash.curve": ("流行曲线：{name}", "Epidemic curve: {name}"),
    "surv.dash.curve_place": ("{place}，{since} 至 {until}", "{place}, {since} to {until}"),
    "surv.dash.legend.count": ("报告病例数", "Cases"),
    "surv.dash.legend.count_feed": ("监测数", "Count"),
    "surv.dash.legend.alarm": ("超过阈值", "Above the threshold"),
    "surv.dash.legend.statistic": ("7日累计", "7-day sum"),
    "surv.dash.legend.threshold": ("预警阈值", "Threshold"),
    "surv.dash.legend.signal": ("预警信号", "Signal"),
    "surv.dash.curve_method.mpm": ("移动百分位数法：近7天累计病例数超过既往各年同期及前后各2周"
                                   "7日累计值的第{p}百分位数（P{p}）时预警（与每日预警计算一致）。",
                                   "Moving percentile: a signal when the last 7 days' cases exceed the P{p} of the"
                                   " 7-day sums of the same and the two neighbouring weeks on each side in past"
                                   " years (as the daily detection computes it)."),
    "surv.dash.curve_method.fixed": ("固定阈值法：出现1例即预警。", "Fixed threshold: one case is a signal."),
    "surv.dash.curve_method.ears_c3": ("EARS C3：当日计数超过阈值线（以前7天为基线、间隔2天）时预警。",
                                       "EARS C3: a signal when the day's count is above the line (baseline the"
                                       " 7 days before a 2-day gap)."),
    "surv.dash.curve_signals": ("期间内该病种（指标）预警信号 {n} 个。", "{n} signals for this stream in the period."),
    "surv.dash.curve_empty": ("期间内无报告。", "Nothing reported in this period."),
    "surv.dash.total": ("合计 {n}", "{n} in all"),
    # definitions
    "surv.dash.definitions": ("指标口径", "Definitions"),
    "surv.dash.def.cases": ("病例数：按诊断日期（北京时间）统计的未删除传染病报告卡数，按现住址所在区县归属。",
                            "Cases: report cards not deleted, by day of diagnosis (China Standard Time), in the"
                            " county of the current address."),
    "surv.dash.def.response": ("信号响应率＝已初步核实信号数÷应响应信号数（产生已满24小时或已核实）；"
                               "24小时内响应率的分子为24小时内完成核实的信号。",
                               "Response rate = signals verified ÷ signals due (24 hours past generation, or"
                               " verified); within 24 h counts those verified within 24 hours."),
    "surv.dash.def.median": ("响应时间：信号产生至初步核实的小时数，取中位数。",
                             "Response time: hours from generation to preliminary verification; the median."),
    "surv.dash.def.suspected": ("疑似事件比例＝核实为疑似事件的信号数÷已核实信号数。",
                                "Suspected-event rate = signals verified as a suspected event ÷ signals verified."),
    "surv.dash.def.report": ("报告及时率：诊断后在规定时限（甲类及按甲类管理2小时，其他24小时）内"
                             "网络直报的报告卡比例。",
                             "Report timeliness: share of cards reported within the limit after diagnosis (2 h for"
                             " class A and diseases managed as A, 24 h otherwise)."),
    "surv.dash.def.review": ("审核及时率：县级疾控在时限内完成审核的报告卡÷已到审核时限或已审核的报告卡。",
                             "Review timeliness: cards reviewed by the county CDC within the limit ÷ cards whose"
                             " review was due or done."),
}
