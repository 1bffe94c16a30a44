"""Statistical models of pain, adherence, exercise mix, program length, response and dropout.

Every model returns a tidy table (``term``, ``estimate``, ``std_error``, ``ci_low``, ``ci_high``,
``p_value`` plus model-specific columns) and has a plotting function returning a matplotlib
figure. Results are associations: adherence and the exercise mix are not randomised.
"""
