-- grain: one charge row (FOCUS columns + x_ extensions), every landed charge, with its PO resolution
select *
from int_charges
