using System.Runtime.InteropServices;
using Mono.Unix.Native;

namespace Packet.Agent.Posix;

/// <summary>Where Mono.Posix's native helper is loaded from.</summary>
public static class NativeLibraries
{
    private const string HelperName = "MonoPosixHelper";
    private const string HelperFile = "libMonoPosixHelper.so";

    /// <summary>
    /// The published agent ships <c>libMonoPosixHelper.so</c> beside its binary. Loading it from
    /// there directly skips the runtime's probing of some twenty system paths for
    /// "MonoPosixHelper.so" first, which costs a no-op boot about half a millisecond.
    /// </summary>
    public static void LoadMonoPosixHelperFromAppDirectory()
    {
        NativeLibrary.SetDllImportResolver(typeof(Syscall).Assembly, (name, _, _) =>
        {
            if (name != HelperName)
            {
                return IntPtr.Zero;
            }

            string beside = Path.Join(AppContext.BaseDirectory, HelperFile);
            return NativeLibrary.TryLoad(beside, out var handle) ? handle : IntPtr.Zero;
        });
    }
}
