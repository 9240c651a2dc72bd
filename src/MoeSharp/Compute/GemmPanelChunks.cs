namespace MoeSharp.Compute;

/// <summary>
/// The state of every panel chunk of a wave's shared packing: not packed, being packed by one task, packed. The
/// first task to need a chunk claims and packs it; another that needs it meanwhile waits the few microseconds a
/// chunk takes. A packer never waits while it holds a claim, so no task can wait on itself through others.
/// </summary>
internal sealed class GemmPanelChunks(int count)
{
    private const int Free = 0,
        Packing = 1,
        Packed = 2;
    private readonly int[] _states = new int[count];

    /// <summary>Claims chunk <paramref name="index"/> for the caller to pack, unless another task has; never
    /// waits.</summary>
    public bool TryClaim(int index) => Interlocked.CompareExchange(ref _states[index], Packing, Free) == Free;

    /// <summary>Marks a claimed chunk packed (its stores visible before the state).</summary>
    public void Publish(int index) => Volatile.Write(ref _states[index], Packed);

    /// <summary>Whether chunk <paramref name="index"/> is packed.</summary>
    public bool IsPacked(int index) => Volatile.Read(ref _states[index]) == Packed;

    /// <summary>Spins (never sleeping) until another task has published chunk <paramref name="index"/>.</summary>
    public void WaitFor(int index)
    {
        var spin = new SpinWait();
        while (!IsPacked(index))
            spin.SpinOnce(sleep1Threshold: -1);
    }
}

/// <summary>
/// The chunk of reduction steps from <paramref name="p0"/> of one operand's shared panels
/// (<c>[panel][K][width]</c> at <paramref name="packed"/>, chunk states from <paramref name="firstState"/>, panel
/// <c>q</c>'s at <c>firstState + q·chunks + chunk</c>).
/// </summary>
internal readonly unsafe ref struct GemmChunkClaim(
    GemmPanelChunks states,
    int firstState,
    int chunks,
    int chunk,
    float* packed,
    int k,
    int p0
)
{
    /// <summary>
    /// Claims every chunk of panels <c>[first, first+count)</c> that no task has claimed, starting at panel
    /// <c>first + rotation % count</c> (so tasks that share the panels start on different ones), packs the claimed
    /// ones together up to <paramref name="perPacking"/> at a time (<see cref="GemmPanelSource.PackAll"/>: a
    /// row-by-row copy where the layout allows), and publishes each batch once packed. It never waits while it
    /// holds a claim.
    /// </summary>
    public void PackUnclaimed(
        GemmPanelSource source,
        int first,
        int count,
        int rotation,
        int depth,
        int perPacking,
        Span<int> panels,
        Span<nint> destinations
    )
    {
        int width = source.Width;
        for (int t = 0; t < count; )
        {
            int claimed = 0;
            for (; t < count && claimed < perPacking; t++)
            {
                int q = first + ((t + rotation) % count);
                int index = firstState + (q * chunks) + chunk;
                if (states.IsPacked(index) || !states.TryClaim(index))
                    continue;
                panels[claimed] = q;
                destinations[claimed] = (nint)(packed + ((long)q * k * width) + ((long)p0 * width));
                claimed++;
            }
            if (claimed == 0)
                return;
            source.PackAll(panels[..claimed], destinations[..claimed], p0, depth);
            for (int i = 0; i < claimed; i++)
                states.Publish(firstState + (panels[i] * chunks) + chunk);
        }
    }
}
