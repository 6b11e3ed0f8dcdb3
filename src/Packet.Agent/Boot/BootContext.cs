using Packet.Agent.Cli;
using Packet.Agent.Copy;
using Packet.Agent.Workspace;

namespace Packet.Agent.Boot;

/// <summary>What the boot steps share: the options, and what earlier steps found or did.</summary>
public sealed class BootContext(BootOptions options)
{
    public BootOptions Options { get; } = options;

    /// <summary>A stop signal's request (SIGTERM, SIGINT, SIGHUP): the running step winds down, the rest do not run.</summary>
    public StopRequest Stop { get; init; } = new();

    /// <summary>Set by the guard: the workspace is a directory, so steps 2-4 can run.</summary>
    public bool PersistenceAvailable { get; set; }

    /// <summary>The persisted home is complete: its marker was there, or has just been written.</summary>
    public bool HomeSeeded { get; set; }

    /// <summary>Dry run: the seed step found that a seed would run (the marker and profile steps plan after it).</summary>
    public bool SeedPlanned { get; set; }

    /// <summary>Set by the seed step when it copied the home in this boot; the marker step records it.</summary>
    public CopyReport? SeedReport { get; set; }

    /// <summary>Held from the seed step until the persistence steps are done; released before exec.</summary>
    public WorkspaceLock? Lock { get; set; }

    public void ReleaseLock()
    {
        Lock?.Dispose();
        Lock = null;
    }
}
