"""User-facing errors: each says what is wrong and what to do about it."""


class SymgeoError(Exception):
    """Base class of every error symgeo raises on purpose."""


class NonRegularFamilyError(SymgeoError):
    """The support depends on a parameter, so the Fisher geometry is not defined."""


class UnnormalizedDensityError(SymgeoError):
    """The declared density does not integrate (or sum) to one."""


class SingularFisherError(SymgeoError):
    """The Fisher matrix is singular: some parameter direction is not identifiable."""


class InvalidArgumentError(SymgeoError, ValueError):
    """A caller's argument is unusable: a command-line option, a malformed number, a bad setting of
    a numeric routine. A ValueError as well, the convention of numpy and scikit-learn callers."""


class DomainError(InvalidArgumentError):
    """A parameter value lies outside the family's parameter domain."""


class IntegrationError(SymgeoError):
    """An expectation could not be computed in closed form within the time bound."""


class SpecError(SymgeoError):
    """A spec file is malformed, too large, or uses something the safe parser refuses."""


class UnknownFamilyError(SymgeoError, LookupError):
    """No catalog family has this name."""


class NumericalError(SymgeoError):
    """A numeric answer came out non-finite, complex or unstable: it is refused, not printed."""
