"""The bare Flask baseline: `gunicorn bench.baselines.hello:app`."""

from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/healthz")
def healthz():
    return jsonify(status="ok")


@app.get("/hello")
def hello():
    return jsonify(hello="world")
