"""Two-way referral (双向转诊): a primary-care doctor refers a patient up with a reserved
place already booked; the hospital refers them back with a plan; primary care follows up
within two weeks. Owns the ``ref_*`` tables.

Public use cases:
- service.py: create_referral, submit_referral, check_criteria (and the core every step
  shares: the state machine's move, the reserved place, escalation to the referral centre);
- workflow.py: accept_referral, schedule_referral, reject_referral, cancel_referral,
  mark_no_show, mark_arrived, start_care, complete_referral, back_refer, receive_back,
  record_followup, close_referral, redirect_referral;
- desk.py: get_referral, search_referrals, followup_tasks, reserved_places, set_intake_rule;
- measures.py: referral_measures (the county bureau's page and API).
"""
