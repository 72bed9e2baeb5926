"""The marketplace protocol: models shared by the agent, the reference marketplace and the tests.

Pure data and decisions (pydantic and the standard library); nothing here touches Docker, the
network or the GPU, so a job can be judged before anything about it exists on the machine.
"""
