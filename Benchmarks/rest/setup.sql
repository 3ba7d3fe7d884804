-- The benchmark database: items -> parents -> groups, 10,000 items.
create table groups (id int primary key, name text not null);
create table parents (id int primary key, name text not null, group_id int references groups(id));
create table items (id int primary key, name text not null, value int not null, parent_id int references parents(id));
insert into groups select g, 'group ' || g from generate_series(1, 100) g;
insert into parents select g, 'parent ' || g, 1 + g % 100 from generate_series(1, 1000) g;
insert into items select g, 'item ' || g, g * 7 % 1000, 1 + g % 1000 from generate_series(1, 10000) g;
analyze;
