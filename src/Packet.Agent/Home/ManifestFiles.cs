using Packet.Agent.Posix;
using Packet.Agent.Workspace;

namespace Packet.Agent.Home;

/// <summary>A manifest written beside the recorded one: <see cref="Commit"/> makes it the baseline; disposing it uncommitted throws it away.</summary>
public sealed class PendingBaseline(IPosix posix, DirectoryHandle state, StreamWriter output) : IDisposable
{
    /// <summary>Where a manifest is written before it replaces the recorded one.</summary>
    internal static string TemporaryName => $".{WorkspaceLayout.ImageManifest}.packet-tmp-{Environment.ProcessId}";

    private bool _committed;

    public void Commit()
    {
        output.Flush();
        ((FileStream)output.BaseStream).Flush(flushToDisk: true);
        PosixException.Check(posix.RenameAt(state.Fd, TemporaryName, state.Fd, WorkspaceLayout.ImageManifest, noReplace: false), "replace", state.PathOf(WorkspaceLayout.ImageManifest));
        _committed = true;
    }

    public void Dispose()
    {
        output.Dispose();
        if (!_committed)
        {
            posix.UnlinkAt(state.Fd, TemporaryName, isDirectory: false);
        }
    }
}

/// <summary>Reads the old manifest in step with the walk: entries the new image lacks are passed over.</summary>
internal sealed class ManifestCursor(StreamReader? reader) : IDisposable
{
    private ManifestEntry? _next;
    private bool _started;

    public ManifestEntry? Take(string path)
    {
        while (Peek() is { } next && ImageManifest.ComparePaths(next.Path, path) < 0)
        {
            _next = null;
        }

        if (Peek() is { } match && match.Path == path)
        {
            _next = null;
            return match;
        }

        return null;
    }

    public void Dispose() => reader?.Dispose();

    private ManifestEntry? Peek()
    {
        if (reader is null)
        {
            return null;
        }

        if (!_started)
        {
            _started = true;
            reader.ReadLine(); // the header
        }

        while (_next is null && reader.ReadLine() is { } line)
        {
            _next = ImageManifest.Parse(line);
        }

        return _next;
    }
}
