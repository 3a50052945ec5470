"""The drift stage: rate_idx and BQX features apart, reference vs current (``run``), their scores
(``scores``) and the HTML page with Evidently's section (``report``)."""
