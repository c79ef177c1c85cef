/// The version `nassync --version` prints.
public let nassyncVersion = "0.1.0"
