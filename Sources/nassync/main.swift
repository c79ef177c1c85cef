import NassyncCore
print(nassyncVersion)
