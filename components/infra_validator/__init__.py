from components.infra_validator.component import InfraValidator

__all__ = ["InfraValidator"]
