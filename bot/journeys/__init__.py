"""The touchpoint engine's planning: which service and greeting messages an owner is owed.

``plans`` turns a recorded cause (a delivery, a workshop visit) into touchpoint rows;
``occasions`` is the daily scan (birthdays, expiries, holidays); ``timing`` the calendar
rules both use. Marketing campaigns live in ``bot.campaigns``; sending in ``bot.delivery``.
"""
