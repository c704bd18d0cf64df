"""Face experts and the one face pipeline that chains them (`pipeline`: detect -> crop -> align ->
expression, what the data engine, the gallery, the demo and the eval harness call): detector + 5-point
landmarks (`detect`), the FaceCLIP crop rule (`crop`), alignment (`align`), expression (`expression`, on
the torch port of fer's mini-Xception in `fer`). Import the submodules directly; this package imports
nothing heavy so that `facevlm --help` stays fast. Asset folders are resolved by `facevlm.assets` alone."""
