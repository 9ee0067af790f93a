"""Two-way referral (双向转诊): a primary-care doctor refers a patient up with a reserved
place already booked; the hospital refers them back with a plan; primary care follows up
within two weeks. Owns ``ref_*`` tables.

Public service functions (service.py): create_referral, submit_referral, accept_referral,
schedule_referral, reject_referral, cancel_referral, mark_no_show, mark_arrived, start_care,
complete_referral, back_refer, receive_back, record_followup, close_referral,
redirect_referral, get_referral, search_referrals, followup_tasks, reserved_places,
check_criteria, set_intake_rule; measures.py: referral_measures.
"""
