namespace Packet.Agent;

/// <summary>Every exit code the agent itself returns (README.md, "Exit codes"). In exec mode the process becomes COMMAND and its code is COMMAND's.</summary>
public enum ExitCode
{
    /// <summary>Done, or done with warnings.</summary>
    Success = 0,

    /// <summary>A step failed and --strict or --gpu require asked for failure.</summary>
    BootFailed = 1,

    /// <summary>Unknown flag, bad value: the message says which and what is accepted.</summary>
    Usage = 2,

    /// <summary>COMMAND was found but cannot be executed.</summary>
    CommandNotExecutable = 126,

    /// <summary>COMMAND was not found.</summary>
    CommandNotFound = 127,

    /// <summary>Stopped by signal n before exec: the code is 128 + n (143 for SIGTERM), as a shell reports it.</summary>
    StoppedBySignal = 128,
}
