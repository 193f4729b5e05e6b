-- A refresh updates one session row (its generation, rotation time and idle expiry, none of them indexed). With
-- room left on each page Postgres can write the new row version next to the old one (a HOT update) without
-- touching any of the table's indexes; a full page forces an update of every index instead.
ALTER TABLE sessions SET (fillfactor = 80);
