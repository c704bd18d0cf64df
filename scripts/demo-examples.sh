#!/usr/bin/env bash
# Printed by `make demo` just before the gateway starts: requests that work against the demo gallery.
set -euo pipefail
HOME_DIR=${FACEVLM_HOME:-$HOME/.cache/facevlm}
URL=http://127.0.0.1:8000
PHOTO=$HOME_DIR/assets/samples/grace_hopper.jpg
cat <<TXT

================================================================================
facevlm gateway: $URL   (OpenAPI: $URL/docs; stop with Ctrl-C)
Web UI (chat + gallery pages): $URL/ui
Gallery "demo": the real sample photos + 300 synthetic faces. In another shell:

# chat (OpenAI-compatible; FaceVLM facevlm-chat-small, in process on CPU): a photo and a question
.venv/bin/python - <<'PY'
import base64
from openai import OpenAI
client = OpenAI(base_url="$URL/v1", api_key="unused")
photo = "data:image/jpeg;base64," + base64.b64encode(open("$PHOTO", "rb").read()).decode()
ask = lambda q: client.chat.completions.create(model="facevlm-chat-small", temperature=0,
    messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": photo}}, {"type": "text", "text": q}]}],
    extra_body={"facevlm": {"gallery": "demo"}}).choices[0].message
print(ask("Is this person smiling?").content)
found = ask("Find more photos of this person in my gallery.")
print(found.content, (found.model_extra or {}).get("facevlm"))
PY

# text -> face
curl -s $URL/v1/faces/search -H 'Content-Type: application/json' \\
  -d '{"gallery": "demo", "query": {"text": "a smiling person with glasses"}, "top_k": 5}'

# face -> face, from an uploaded photo (the multipart file is image_1)
curl -s $URL/v1/faces/search -F image=@$PHOTO \\
  -F 'arguments={"gallery": "demo", "query": {"face": {"image": "image_1"}, "match": "look_alike"}, "top_k": 5}'

# composed: this gallery face, but smiling (PDV)
curl -s $URL/v1/faces/search -H 'Content-Type: application/json' \\
  -d '{"gallery": "demo", "query": {"face": {"face_id": "1"}, "edit": "smiling"}, "top_k": 5}'

# filters on pseudo-labels
curl -s $URL/v1/faces/search -H 'Content-Type: application/json' \\
  -d '{"gallery": "demo", "query": {"text": "a person"}, "filters": {"expression": ["happy"], "min_prob": 0.6}}'

# embeddings (OpenAI-compatible), text and image
curl -s $URL/v1/embeddings -H 'Content-Type: application/json' \\
  -d '{"model": "facevlm-clip-small", "input": ["a bald man with a beard"]}' | head -c 300; echo
.venv/bin/python - <<'PY'
from openai import OpenAI
client = OpenAI(base_url="$URL/v1", api_key="unused")
out = client.embeddings.create(model="facevlm-clip-small", input=["a smiling person with glasses"])
print(len(out.data[0].embedding), "dims")
PY
================================================================================
TXT
