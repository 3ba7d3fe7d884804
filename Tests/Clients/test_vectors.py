"""Vector indexes at {apiUrl}/vectors/v1, judged by the official `pinecone` client: recall against
numpy's exact k-nearest neighbours, metadata filters, namespaces, updates and deletes, Pinecone's
limits and errors, policies for other roles, and records that survive kill -9 of the node."""
import json
import time
import urllib.error
import urllib.request

import numpy
import pytest
from pinecone import Pinecone
from pinecone import ApiError as PineconeApiException

from conftest import call
from test_sqlite_hosted import EmbeddedNode


def control(tenant, key=None):
    return Pinecone(api_key=key or tenant["serviceKey"], host=tenant["apiUrl"] + "/vectors/v1")


def clustered(count, dimension, seed):
    """Seeded clustered vectors: count/50 centres, each point a centre plus noise."""
    random = numpy.random.default_rng(seed)
    centres = random.normal(0, 3, size=(max(count // 50, 1), dimension))
    return (centres[random.integers(0, len(centres), size=count)] + random.normal(0, 1, size=(count, dimension))).astype(numpy.float32)


def exact_neighbours(data, query, k, metric):
    if metric == "euclidean":
        distances = ((data - query) ** 2).sum(axis=1)
        return numpy.argsort(distances)[:k]
    if metric == "cosine":
        data = data / numpy.linalg.norm(data, axis=1, keepdims=True)
        query = query / numpy.linalg.norm(query)
    return numpy.argsort(-(data @ query))[:k]


def test_the_official_client_finds_the_true_neighbours(tenant):
    pc = control(tenant)
    pc.create_index(name="docs", dimension=32, metric="cosine", spec={"serverless": {"cloud": "aws", "region": "us-east-1"}})
    described = pc.describe_index("docs")
    assert described.host == tenant["apiUrl"] + "/vectors/v1/indexes/docs" and described.status.ready
    index = pc.Index(host=described.host)
    data = clustered(6000, 32, seed=1)
    genres = ["drama", "comedy", "noir"]
    for start in range(0, len(data), 1000):
        batch = [(f"d{i}", data[i].tolist(), {"genre": genres[i % 3], "year": 1990 + i % 30}) for i in range(start, start + 1000)]
        assert index.upsert(vectors=batch).upserted_count == 1000
    assert index.describe_index_stats().total_vector_count == 6000
    queries = clustered(50, 32, seed=2)
    hits = 0
    for query in queries:
        found = [m.id for m in index.query(vector=query.tolist(), top_k=10).matches]
        truth = [f"d{i}" for i in exact_neighbours(data, query, 10, "cosine")]
        hits += len(set(found) & set(truth))
    recall = hits / (10 * len(queries))
    print(f"recall@10 {recall:.3f}")
    assert recall >= 0.95
    # A filter: only the matching documents, still the nearest of them.
    query = queries[0]
    filtered = index.query(vector=query.tolist(), top_k=5, filter={"genre": {"$eq": "noir"}, "year": {"$gte": 2000}}, include_metadata=True)
    allowed = [i for i in range(len(data)) if i % 3 == 2 and 1990 + i % 30 >= 2000]
    expected = [f"d{allowed[i]}" for i in exact_neighbours(data[allowed], query, 5, "cosine")]
    assert [m.id for m in filtered.matches] == expected
    assert all(m.metadata["genre"] == "noir" for m in filtered.matches)
    # By id, with values as they were sent.
    by_id = index.query(id="d7", top_k=1, include_values=True)
    assert by_id.matches[0].id == "d7" and numpy.allclose(by_id.matches[0].values, data[7], atol=1e-4)


def test_namespaces_fetch_update_list_and_delete(tenant):
    pc = control(tenant)
    pc.create_index(name="notes", dimension=4, metric="euclidean", spec={"serverless": {"cloud": "aws", "region": "us-east-1"}})
    index = pc.Index(host=pc.describe_index("notes").host)
    index.upsert(vectors=[("a", [1, 0, 0, 0], {"kind": "x"}), ("b", [0, 1, 0, 0], {"kind": "y"}), ("c", [0, 0, 1, 0])], namespace="left")
    index.upsert(vectors=[("a", [0, 0, 0, 1])], namespace="right")
    stats = index.describe_index_stats()
    assert stats.total_vector_count == 4 and stats.namespaces["left"].vector_count == 3
    fetched = index.fetch(ids=["a", "missing"], namespace="left").vectors
    assert list(fetched) == ["a"] and fetched["a"].values == [1, 0, 0, 0] and fetched["a"].metadata == {"kind": "x"}
    nearest = index.query(vector=[0.9, 0.1, 0, 0], top_k=2, namespace="left")
    assert [m.id for m in nearest.matches] == ["a", "b"] and nearest.matches[0].score == pytest.approx(0.02, abs=1e-4)
    index.update(id="b", set_metadata={"kind": "z", "extra": 1}, namespace="left")
    assert index.fetch(ids=["b"], namespace="left").vectors["b"].metadata == {"kind": "z", "extra": 1}
    index.update(id="c", values=[1, 1, 0, 0], namespace="left")
    assert index.fetch(ids=["c"], namespace="left").vectors["c"].values == [1, 1, 0, 0]
    assert [item.id for page in index.list(namespace="left") for item in page.vectors] == ["a", "b", "c"]
    index.delete(filter={"kind": {"$eq": "z"}}, namespace="left")
    assert sorted(index.fetch(ids=["a", "b", "c"], namespace="left").vectors) == ["a", "c"]
    index.delete(delete_all=True, namespace="right")
    assert "right" not in index.describe_index_stats().namespaces
    pc.delete_index("notes")
    assert pc.list_indexes().names() == []


def raw(tenant, path, body, key=None):
    request = urllib.request.Request(f"{tenant['apiUrl']}/vectors/v1{path}", data=json.dumps(body).encode(), method="POST")
    request.add_header("Api-Key", key or tenant["serviceKey"])
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def test_bad_input_is_refused_and_nothing_is_half_written(node, tenant):
    pc = control(tenant)
    pc.create_index(name="strict", dimension=3, metric="dotproduct", spec={"serverless": {"cloud": "aws", "region": "us-east-1"}})
    index = pc.Index(host=pc.describe_index("strict").host)
    index.upsert(vectors=[("kept", [1, 2, 3])])
    for vectors, code in [
        ([("a", [1, 2])], "MB893"),
        ([(f"v{i}", [1, 2, 3]) for i in range(1001)], "MB896"),
        ([("big", [1, 2, 3], {"text": "x" * 50_000})], "MB895"),
        ([("ok", [1, 2, 3]), ("ok", [3, 2, 1])], "MB896"),
    ]:
        with pytest.raises(PineconeApiException) as failed:
            index.upsert(vectors=vectors)
        assert failed.value.status_code == 400 and failed.value.body["code"] == code, failed.value.body
    status, body = raw(tenant, "/indexes/strict/vectors/upsert", {"vectors": [{"id": "nan", "values": [1, "x", 3]}]})
    assert status == 400 and body["code"] == "MB894"
    status, body = raw(tenant, "/indexes/strict/query", {"topK": 3, "vector": [1, 2, 3], "filter": {"a": {"$regex": "x"}}})
    assert status == 400 and body["code"] == "MB897"
    status, body = raw(tenant, "/indexes/strict/query", {"topK": 20000, "vector": [1, 2, 3]})
    assert status == 400 and body["code"] == "MB896"
    assert index.describe_index_stats().total_vector_count == 1, "no refused batch left a record behind"
    with pytest.raises(PineconeApiException) as failed:
        pc.create_index(name="strict", dimension=3, metric="cosine", spec={"serverless": {"cloud": "aws", "region": "us-east-1"}})
    assert failed.value.status_code == 409
    status, body = raw(tenant, "/indexes/nothing/query", {"topK": 1, "vector": [1, 2, 3]})
    assert status == 404 and body["error"]["code"] == "NOT_FOUND"
    # Other roles need a policy on vectors:{name}; anon gets read only.
    status, body = raw(tenant, "/indexes/strict/query", {"topK": 1, "vector": [1, 2, 3]}, key=tenant["anonKey"])
    assert status == 403 and body["code"] == "MB891"
    call("PUT", f"{node.base}/admin/v1/tenants/{tenant['slug']}/policies", node.token, {"policies": [
        {"entity": "vectors:strict", "role": "anon", "action": "read"}]})
    deadline = time.time() + 10
    while True:
        status, body = raw(tenant, "/indexes/strict/query", {"topK": 1, "vector": [1, 2, 3]}, key=tenant["anonKey"])
        if status != 503 or time.time() > deadline:
            break
        time.sleep(0.1)
    assert status == 200 and body["matches"][0]["id"] == "kept"
    status, body = raw(tenant, "/indexes/strict/vectors/upsert", {"vectors": [{"id": "x", "values": [1, 2, 3]}]}, key=tenant["anonKey"])
    assert status == 403 and body["code"] == "MB891"


def test_acknowledged_vectors_survive_kill_minus_nine():
    lite = EmbeddedNode()
    try:
        keys = {line.split(":", 1)[0].strip(): line.split(":", 1)[1].strip() for line in lite.announced if " key:" in line}
        api = f"{lite.base}/t/demo"
        pc = Pinecone(api_key=keys["service key"], host=api + "/vectors/v1")
        pc.create_index(name="durable", dimension=8, metric="cosine", spec={"serverless": {"cloud": "aws", "region": "us-east-1"}})
        index = pc.Index(host=pc.describe_index("durable").host)
        data = clustered(300, 8, seed=3)
        index.upsert(vectors=[(f"k{i}", data[i].tolist(), {"i": i}) for i in range(300)], namespace="n")
        lite.kill()
        lite.start()
        api = f"{lite.base}/t/demo"
        pc = Pinecone(api_key=keys["service key"], host=api + "/vectors/v1")
        index = pc.Index(host=api + "/vectors/v1/indexes/durable")
        deadline = time.time() + 20
        while True:
            try:
                stats = index.describe_index_stats()
                break
            except PineconeApiException as error:
                if error.status_code != 503 or time.time() > deadline:
                    raise
                time.sleep(0.1)
        assert stats.total_vector_count == 300
        assert index.query(id="k5", top_k=1, namespace="n", include_metadata=True).matches[0].metadata == {"i": 5}
    finally:
        lite.stop()



def test_an_index_bound_to_a_column_mirrors_the_table(node, tenant):
    import subprocess
    def psql(statement):
        subprocess.run(["psql", tenant["database"], "-qc", statement], check=True, stdout=subprocess.DEVNULL)
    psql("create table films (id int primary key, title text, genre text, embedding real[])")
    psql("insert into films values (1, 'Up', 'family', '{1,0,0}'), (2, 'Heat', 'crime', '{0,1,0}'), (3, 'Drafts', 'crime', null)")
    status, body = raw(tenant, "/indexes", {"name": "films", "entity": "films", "vectorColumn": "embedding"})
    assert status == 404 and body["code"] == "MB880", "a table the source's model does not know yet"
    call("POST", f"{node.base}/admin/v1/tenants/{tenant['slug']}/sources/main/refresh", node.token, {})
    deadline = time.time() + 10
    while True:
        status, body = raw(tenant, "/indexes", {"name": "films", "entity": "films", "vectorColumn": "embedding", "metadataColumns": ["title", "genre"]})
        if status != 503 or time.time() > deadline:
            break
        time.sleep(0.1)
    assert status == 201 and body["dimension"] == 3, body
    index = control(tenant).Index(host=body["host"])

    def nearest(vector, **options):
        try:
            return index.query(vector=vector, top_k=3, include_metadata=True, **options).matches
        except PineconeApiException as error:
            if error.status_code == 503:
                return None
            raise
    matches = None
    deadline = time.time() + 10
    while matches is None and time.time() < deadline:
        matches = nearest([0.9, 0.1, 0])
        time.sleep(0.05)
    assert [m.id for m in matches] == ["1", "2"], "the row without a vector is left out"
    assert matches[0].metadata == {"title": "Up", "genre": "family"}
    psql("insert into films values (4, 'Alien', 'horror', '{0,0,1}')")
    psql("update films set embedding = '{0.8,0.2,0}' where id = 2")
    deadline = time.time() + 5
    while time.time() < deadline:
        found = nearest([0, 0, 1], filter={"genre": {"$eq": "horror"}})
        if found and found[0].id == "4":
            break
        time.sleep(0.05)
    assert found[0].id == "4"
    psql("delete from films where id = 1")
    deadline = time.time() + 5
    while time.time() < deadline and "1" in [m.id for m in nearest([1, 0, 0])]:
        time.sleep(0.05)
    assert [m.id for m in nearest([1, 0, 0])][:1] == ["2"]
    with pytest.raises(PineconeApiException) as refused:
        index.upsert(vectors=[("9", [1, 1, 1])])
    assert refused.value.status_code == 405 and refused.value.body["code"] == "MB898"
