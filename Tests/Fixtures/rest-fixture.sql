-- mini-baas REST fixture: every relation kind, views, enums, arrays, jsonb, mixed-case names, functions.
create type mood as enum ('happy', 'sad', 'meh');
create schema "Extra";

create table orgs (id serial primary key, name text not null unique);
create table "Authors" (
  "Id" int generated always as identity primary key,
  "FullName" text not null,
  org_id int references orgs(id),
  mood mood not null default 'meh'
);
comment on table "Authors" is 'People who write';
create table profiles (author_id int primary key references "Authors"("Id") on delete cascade, bio text);  -- one-to-one
create table posts (
  id bigserial primary key,
  author_id int not null references "Authors"("Id"),
  editor_id int references "Authors"("Id"),
  title text not null check (length(title) > 0),
  tags text[] not null default '{}',
  meta jsonb,
  published boolean not null default false,
  created_at timestamptz not null default '2026-01-01T00:00:00Z',
  score numeric(5,2),
  slug text generated always as (lower(replace(title, ' ', '-'))) stored
);
create table labels (id int primary key, name text not null);
create table post_labels (post_id bigint references posts(id) on delete cascade, label_id int references labels(id), primary key (post_id, label_id));
create table "Extra"."Notes" (id int primary key, body text);
create view published_posts as select id, title, author_id from posts where published;
create view author_stats as select author_id, count(*) as posts from posts group by author_id;

create function add_numbers(a int, b int default 10) returns int language sql immutable as $$ select a + b $$;
create function posts_by(author int) returns setof posts language sql stable as $$ select * from posts where author_id = author order by id $$;
create function tag_list() returns setof text language sql stable as $$ select distinct unnest(tags) from posts order by 1 $$;
create function touch_post(post bigint) returns void language sql volatile as $$ update posts set score = coalesce(score, 0) + 1 where id = post $$;
create function author_card(author int) returns "Authors" language sql stable as $$ select * from "Authors" where "Id" = author $$;
create function sum_array(xs int[]) returns int language sql immutable as $$ select coalesce(sum(x), 0)::int from unnest(xs) x $$;

insert into orgs (name) values ('Acme'), ('Globex');
insert into "Authors" ("FullName", org_id, mood) values ('Ada Lovelace', 1, 'happy'), ('Alan Turing', 1, 'sad'), ('Grace Hopper', 2, 'happy'), ('Nobody', null, 'meh');
insert into profiles values (1, 'First programmer'), (3, 'COBOL');
insert into posts (author_id, editor_id, title, tags, meta, published, score) values
  (1, 3, 'Notes on the Engine', '{math,history}', '{"lang": "en", "pages": 20}', true, 9.5),
  (1, null, 'Poetical Science', '{poetry}', '{"lang": "en"}', false, null),
  (2, 1, 'Computing Machinery', '{ai,math}', '{"lang": "en", "pages": 27}', true, 8.25),
  (3, 2, 'Compilers', '{cobol}', '{"lang": "fr"}', true, 7),
  (2, null, 'On Computable Numbers', '{math}', null, true, 10);
insert into labels values (1, 'classic'), (2, 'draft'), (3, 'featured');
insert into post_labels values (1, 1), (1, 3), (2, 2), (3, 1), (5, 1), (5, 3);
insert into "Extra"."Notes" values (1, 'in another schema');

create function slow(ms int) returns int language sql volatile as $$ select pg_sleep(ms / 1000.0); select ms $$;
