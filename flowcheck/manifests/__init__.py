"""Manifests as a platform repository keeps them: reading, kustomize handling, schema validation.

The base every layer that reads a policy file stands on: the model parses the documents read here
into typed policies, the cluster layer applies the same documents, and ``flowcheck validate``
checks them against the schemas. It knows nothing of verdicts or clusters -- only files,
documents, kinds and fields -- so a document is read once and every error names the file, the
document and the field the same way wherever it surfaces.

Modules:

* ``documents``  -- files, directories, multi-document YAML, ``List`` objects, kustomizations
                    -> ``SourceDocument`` records (the built-in kustomization reader: ``resources``
                    and ``namespace`` only);
* ``kustomize``  -- kustomizations rendered by the real tool (``kustomize build``, ``kubectl
                    kustomize``), each object traced back to its file;
* ``kinds``      -- the policy kinds and apiVersions the API server serves, the fields Cilium
                    removed, and what the API server stores of a custom resource (nulls pruned);
* ``field_path`` -- ``spec.ingress[0].toPorts`` field paths, as every error message writes them;
* ``validation`` -- Kubernetes' OpenAPI schemas (``kubernetes-validate``) and Cilium's CRD schema
                    (bundled in ``schemas/``, see ``schemas/SOURCE.txt``), strict.
"""
