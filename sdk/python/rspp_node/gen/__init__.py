# Generated from proto/rspp/v1 by `make proto`: do not edit.
