"""The platform's own messages (layout, home page, paging, error pages), added to the
catalogue by ``healthgrid.web`` when it is imported.

Error codes of any context may get a translated one-line explanation under
``error.<CODE>`` (the coded message itself is always shown too); the platform covers its
own ``HG-*`` codes here, contexts add theirs next to their other messages.
"""

from __future__ import annotations

PLATFORM_MESSAGES: dict[str, tuple[str, str]] = {
    "app.name": ("HealthGrid 区域卫生信息平台", "HealthGrid regional health platform"),
    "app.short": ("HealthGrid", "HealthGrid"),
    "app.tagline": (
        "HealthGrid 连接区域内五级医疗卫生服务体系，支撑预约转诊、结果互认、"
        "疾病监测与急救协同，服务分级诊疗。",
        "HealthGrid connects every level of a region's health services — booking, referral, shared "
        "results, disease surveillance and emergency care — to make tiered care work.",
    ),
    "layout.skip": ("跳到正文", "Skip to content"),
    "layout.nav_label": ("主导航", "Main navigation"),
    "layout.home": ("首页", "Home"),
    "layout.switch_lang": ("English", "中文"),
    "layout.switch_lang_label": ("切换为英文界面", "Switch to Chinese"),
    "layout.timezone_note": ("时间均按 {tz} 时区显示", "All times are shown in the {tz} time zone"),
    "layout.generated": ("页面生成于 {time}", "Page generated at {time}"),
    "layout.logout": ("退出登录", "Log out"),
    "layout.password": ("修改密码", "Password"),
    "layout.user": ("当前用户", "Signed in as"),
    "layout.api": ("接口说明 (OpenAPI)", "API description (OpenAPI)"),
    "layout.fhir": ("FHIR 能力声明", "FHIR capability statement"),
    "home.title": ("首页", "Home"),
    "home.links": ("常用入口", "Quick links"),
    "breadcrumb.label": ("当前位置", "You are here"),
    "pager.label": ("分页", "Pagination"),
    "pager.prev": ("上一页", "Previous"),
    "pager.next": ("下一页", "Next"),
    "pager.summary": ("第 {page} / {pages} 页，共 {total} 条", "Page {page} of {pages}, {total} in all"),
    "common.all": ("全部", "All"),
    "common.none": ("无", "None"),
    "common.filter": ("筛选", "Filter"),
    "common.reset": ("清除筛选", "Clear filters"),
    "common.search": ("搜索", "Search"),
    "common.code": ("代码", "Code"),
    "common.name": ("名称", "Name"),
    "common.count": ("数量", "Count"),
    "common.total": ("合计", "Total"),
    "error.title.400": ("请求有误", "Bad request"),
    "error.title.403": ("无权访问", "Access denied"),
    "error.title.404": ("未找到", "Not found"),
    "error.title.405": ("不支持的请求方式", "Method not allowed"),
    "error.title.409": ("操作冲突", "Conflict"),
    "error.title.412": ("前提条件不满足", "Precondition failed"),
    "error.title.422": ("输入有误", "Invalid input"),
    "error.title.other": ("出错了", "Something went wrong"),
    "error.code": ("错误代码", "Error code"),
    "error.message": ("错误信息", "Message"),
    "error.back_home": ("返回首页", "Back to the home page"),
    "error.HG-404": ("没有这个页面。", "There is no such page."),
    "error.HG-405": ("该地址不支持这种请求方式。", "This address does not accept this kind of request."),
    "error.HG-422": ("请求中的某个参数不符合要求。", "A parameter of the request is not valid."),
}
