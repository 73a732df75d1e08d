-- partition-deps schema, version 8.

-- An asset's automation condition, in the JSON form of domain/automation/conditions.py
-- (`{"type": "and", "operands": [...]}`); NULL: the asset has none.
ALTER TABLE assets ADD COLUMN automation_condition jsonb;
