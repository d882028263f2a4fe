from tests.factories import auth, make_tree, make_user


def test_me_with_token(app, client):
    tree = make_tree(app)
    uid = make_user(app, role="admin", node_id=tree.district, name="管理员")
    r = client.get("/api/v1/me", headers=auth(app, uid))
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["display_name"] == "管理员"
    assert body["roles"] == ["admin"]


def test_readyz(client):
    r = client.get("/readyz")
    assert r.status_code == 200, r.get_json()
