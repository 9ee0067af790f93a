"""Scheduling (预约挂号与集中检查预约): schedules of doctors, departments and equipment, their
sessions and time slots split into quota pools (reserved for referrals, web/app, phone,
kiosk, window), real-name booking with its rules, the waitlist, stop-clinic notices, and
the centralised exam booking that books several exams in one step.

Public service: ``service.book_appointment``, ``cancel_appointment``, ``check_in``,
``complete_appointment``, ``accept_offer``, ``join_waitlist``, ``find_slots``, ``day_list``,
``my_appointments``, ``add_proxy``; ``schedules.create_schedule``, ``set_templates``,
``open_sessions``, ``add_closure``; ``exam_booking.plan_exam_booking``, ``book_exams``.
Referrals (issue 6) book reserved places through ``book_appointment(referral_ref=...)``.
"""
