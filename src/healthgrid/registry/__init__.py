"""Registry context: the region's five-level service system.

Owns administrative divisions (province → village), organisations on levels L0–L5 with
grade and type, alliances (医联体: 城市医疗集团, 县域医共体, 专科联盟, 远程医疗协作网), departments,
healthcare services, equipment, practitioners with their practising sites (多点执业) and
key-specialty designations.

Public service functions (``registry.service``): create_division, create_organization,
update_organization, create_alliance, add_alliance_member, add_department, add_service,
add_equipment, create_practitioner, add_practice_site, designate_key_specialty,
get_division, get_organization, get_organization_by_code. Read-only listings for other
surfaces live in ``registry.queries``.
"""
