namespace Packet.Agent.Boot;

/// <summary>The kinds of change a step's plan may name.</summary>
public enum ChangeKind
{
    /// <summary>A directory made (with its owner and mode).</summary>
    CreateDirectory,

    /// <summary>A file written whole: a temporary file beside it, then renamed over it, with its owner and mode.</summary>
    WriteFile,

    /// <summary>The owner of an existing entry changed.</summary>
    SetOwner,

    /// <summary>The mode of an existing entry changed.</summary>
    SetMode,

    /// <summary>A symbolic link made at the path, pointing to <see cref="PlannedChange.Other"/>.</summary>
    Link,

    /// <summary>An entry moved from the path to <see cref="PlannedChange.Other"/>, never over an existing one.</summary>
    Move,

    /// <summary>One entry removed.</summary>
    Remove,

    /// <summary>A tree removed, everything in it.</summary>
    RemoveTree,

    /// <summary>
    /// Everything under the path made as a copy (directories, files, links, owners, modes, times,
    /// extended attributes); an entry copied into an existing home is built beside its place
    /// (<c>.NAME.packet-tmp</c>) and renamed into it.
    /// </summary>
    CopyTree,

    /// <summary>The workspace lock taken (its file made when missing).</summary>
    Lock,

    /// <summary>A program run to its end.</summary>
    RunProgram,

    /// <summary>A program started and left running.</summary>
    StartProcess,

    /// <summary>A running process told to stop.</summary>
    StopProcess,

    /// <summary>The agent replaced by a program (execve).</summary>
    Exec,
}

/// <summary>
/// One change a step's plan names: of what kind, where (an absolute path, or the program), the
/// other path of a move or a link, and the condition when it happens only in some case.
/// </summary>
public sealed record PlannedChange(ChangeKind Kind, string Path, string? Other = null, string? Condition = null)
{
    public static PlannedChange CreateDirectory(string path, string? condition = null) => new(ChangeKind.CreateDirectory, path, Condition: condition);

    public static PlannedChange WriteFile(string path, string? condition = null) => new(ChangeKind.WriteFile, path, Condition: condition);

    public static PlannedChange Remove(string path, string? condition = null) => new(ChangeKind.Remove, path, Condition: condition);

    public static PlannedChange Run(string program, string what) => new(ChangeKind.RunProgram, program, what);

    /// <summary>One line of the dry run.</summary>
    public string Describe()
    {
        string what = Kind switch
        {
            ChangeKind.CreateDirectory => $"create directory {Path}",
            ChangeKind.WriteFile => $"write {Path}",
            ChangeKind.SetOwner => $"set the owner of {Path}{(Other is null ? string.Empty : $" to {Other}")}",
            ChangeKind.SetMode => $"set the mode of {Path}{(Other is null ? string.Empty : $" to {Other}")}",
            ChangeKind.Link => $"link {Path} to {Other}",
            ChangeKind.Move => $"move {Path} to {Other}",
            ChangeKind.Remove => $"remove {Path}",
            ChangeKind.RemoveTree => $"remove {Path} and everything in it",
            ChangeKind.CopyTree => $"copy {Other} into {Path}",
            ChangeKind.Lock => $"take the workspace lock {Path}",
            ChangeKind.RunProgram => $"run {Path}{(Other is null ? string.Empty : $" ({Other})")}",
            ChangeKind.StartProcess => $"start {Path}{(Other is null ? string.Empty : $" ({Other})")}",
            ChangeKind.StopProcess => $"stop {Path}{(Other is null ? string.Empty : $" ({Other})")}",
            _ => $"replace the agent with {Path}{(Other is null ? string.Empty : $" ({Other})")}",
        };
        return Condition is null ? what : $"{what}, {Condition}";
    }
}
