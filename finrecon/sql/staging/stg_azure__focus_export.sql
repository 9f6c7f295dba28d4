-- grain: one row of an Azure FocusCost export (FOCUS 1.0, 1.0r2 or 1.2-preview) of one month, in FOCUS columns
-- applied at landing: runs once per delivered month over relation `azure_focus_delivery`, not in the nightly build
--
-- The export is FOCUS already: what changes is Microsoft's drift. A missing subscription is written as NULL, as ''
-- or (older exports) as the empty GUID; all three become NULL. The resource group (x_ResourceGroupName) is kept
-- as x_resource_group for allocation rules. Tags text without braces is wrapped by the FOCUS checks that follow.
select
    * replace (
        nullif(nullif(trim(SubAccountId), ''), '00000000-0000-0000-0000-000000000000') as SubAccountId
    ),
    x_ResourceGroupName as x_resource_group
from azure_focus_delivery
