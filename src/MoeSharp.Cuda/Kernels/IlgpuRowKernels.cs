using ILGPU;
using ILGPU.Runtime;
using MoeSharp.Cuda.Memory;
using MoeSharp.Tensors;

namespace MoeSharp.Cuda.Kernels;

/// <summary>
/// The row kernels of <see cref="IlgpuMoeKernels"/> (gather, token scatter, gather-reduce, row dots, rank-ordered sum)
/// for one row type: the launch logic is written once here, the kernel bodies once over the row type, and
/// <see cref="IlgpuMoeKernels"/> picks the instance by dtype in one place.
/// </summary>
internal abstract class IlgpuRowKernels
{
    /// <inheritdoc cref="Compute.IRowKernels.GatherRows"/>
    public abstract void GatherRows(
        Tensor source,
        int sourceRowOffset,
        Tensor rowOf,
        Tensor? scale,
        Tensor destination
    );

    /// <inheritdoc cref="Compute.IRowKernels.ScatterTokenRows"/>
    public abstract void ScatterTokenRows(
        Tensor source,
        int sourceRowOffset,
        Tensor rowToken,
        Tensor entryRow,
        int topK,
        Tensor? scale,
        Tensor destination
    );

    /// <inheritdoc cref="Compute.IRowKernels.GatherReduce"/>
    public abstract void GatherReduce(
        Tensor rows,
        Tensor positions,
        Tensor? scale,
        Tensor? initial,
        Tensor destination,
        int destinationOffset
    );

    /// <inheritdoc cref="Compute.IRowKernels.RowDots"/>
    public abstract void RowDots(
        Tensor a,
        Tensor aRow,
        Tensor b,
        int bRowOffset,
        int entriesPerBRow,
        Tensor result,
        int resultOffset
    );

    /// <inheritdoc cref="Collectives.IRankOrderedSum.SumInRankOrder"/>
    public abstract void SumInRankOrder(Tensor gathered, int ranks, Tensor values);
}

/// <summary>
/// <see cref="IlgpuRowKernels"/> for rows of <typeparamref name="TElement"/> (<typeparamref name="TRow"/> its
/// arithmetic). Each kernel is compiled the first time it is launched (a row type uses only some of the layouts).
/// </summary>
/// <remarks>
/// Which layout a row length gets is a measured choice per row type, kept as it was when the kernels had one copy per
/// type: bfloat16 gathers and reduces use the tiled layout for whole tiles, then 16-byte packs, then one value per
/// thread; float32 gathers use packs or single values and its reduce single values (not timed in the other layouts).
/// The token scatter is tiled for both.
/// </remarks>
internal sealed class IlgpuRowKernels<TElement, TRow> : IlgpuRowKernels
    where TElement : unmanaged
    where TRow : struct, IDeviceRow<TElement>
{
    private readonly Accelerator _accelerator;
    private readonly DType _dtype;
    private readonly Func<Tensor, string, IlgpuDeviceBuffer> _buffer;
    private readonly bool _tiledGather,
        _packedReduce,
        _tiledReduce;
    private readonly bool _cuda;
    private readonly int _valuesPerPack;

    private Action<
        Index1D,
        ArrayView<TElement>,
        int,
        ArrayView<int>,
        ArrayView<float>,
        int,
        int,
        ArrayView<TElement>
    >? _gather;
    private Action<
        Index1D,
        ArrayView<UInt4>,
        int,
        ArrayView<int>,
        ArrayView<float>,
        int,
        int,
        ArrayView<UInt4>
    >? _gatherPacks;
    private Action<
        Index1D,
        ArrayView<uint>,
        int,
        ArrayView<int>,
        ArrayView<float>,
        int,
        int,
        ArrayView<uint>
    >? _gatherTiled;
    private Action<
        Index1D,
        ArrayView<TElement>,
        ArrayView<int>,
        int,
        ArrayView<float>,
        int,
        ArrayView<TElement>,
        int,
        int,
        ArrayView<TElement>,
        int
    >? _reduce;
    private Action<
        Index1D,
        ArrayView<UInt4>,
        ArrayView<int>,
        int,
        ArrayView<float>,
        int,
        ArrayView<UInt4>,
        int,
        int,
        ArrayView<UInt4>,
        int
    >? _reducePacks;
    private Action<
        Index1D,
        ArrayView<uint>,
        ArrayView<int>,
        int,
        ArrayView<float>,
        int,
        ArrayView<uint>,
        int,
        int,
        ArrayView<uint>,
        int
    >? _reduceTiled;
    private Action<
        Index1D,
        ArrayView<uint>,
        int,
        ArrayView<int>,
        int,
        ArrayView<float>,
        int,
        int,
        ArrayView<uint>
    >? _scatter;
    private Action<Index1D, ArrayView<int>, int, ArrayView<uint>>? _clearTokenless;
    private Action<
        KernelConfig,
        ArrayView<TElement>,
        ArrayView<int>,
        ArrayView<TElement>,
        int,
        int,
        int,
        int,
        ArrayView<float>,
        int
    >? _rowDots;
    private Action<Index1D, ArrayView<TElement>, int, int, ArrayView<TElement>>? _sumRanks;

    /// <summary>Row kernels on <paramref name="accelerator"/> for tensors of <paramref name="dtype"/>.</summary>
    /// <param name="accelerator">Where the kernels run.</param>
    /// <param name="dtype">The tensors' dtype, whose values <typeparamref name="TElement"/> stores.</param>
    /// <param name="buffer">The device buffer of a tensor (named for errors), checked to be on the accelerator.</param>
    /// <param name="tiledGather">Whether gathers of whole tiles use the tiled layout.</param>
    /// <param name="packedReduce">Whether reduces use the tiled and packed layouts.</param>
    /// <param name="tiledReduce">Whether reduces of whole tiles use the tiled layout (implied by
    /// <paramref name="packedReduce"/>).</param>
    public IlgpuRowKernels(
        Accelerator accelerator,
        DType dtype,
        Func<Tensor, string, IlgpuDeviceBuffer> buffer,
        bool tiledGather,
        bool packedReduce,
        bool tiledReduce = false
    )
    {
        _accelerator = accelerator;
        _dtype = dtype;
        _buffer = buffer;
        _tiledGather = tiledGather;
        _packedReduce = packedReduce;
        _tiledReduce = packedReduce || tiledReduce;
        // CUDA gets float64 products that ptxas cannot contract; every other accelerator runs .NET operators
        // (see StrictFloat).
        _cuda = accelerator.AcceleratorType == AcceleratorType.Cuda;
        _valuesPerPack = 4 * default(TRow).ValuesPerWord();
    }

    /// <inheritdoc />
    public override void GatherRows(Tensor source, int sourceRowOffset, Tensor rowOf, Tensor? scale, Tensor destination)
    {
        int d = destination.RowLength,
            total = rowOf.ElementCount * d;
        if (total == 0)
            return;
        ArrayView<int> map = Ints(rowOf, nameof(rowOf));
        ArrayView<float> scales = scale is null ? map.Cast<float>() : Floats(scale, nameof(scale));
        int hasScale = scale is null ? 0 : 1;
        int perWord = _valuesPerPack / 4;
        if (_tiledGather && d % (perWord * TiledRowKernelBodies.TileWords) == 0)
        {
            _gatherTiled ??= Load<ArrayView<uint>, ArrayView<int>, ArrayView<float>, ArrayView<uint>>(
                TiledRowKernelBodies.GatherRows<CudaStrictFloat, TRow>,
                TiledRowKernelBodies.GatherRows<ManagedStrictFloat, TRow>
            );
            _gatherTiled(
                total / _valuesPerPack,
                Words(source, nameof(source)),
                sourceRowOffset,
                map,
                scales,
                hasScale,
                d / perWord,
                Words(destination, nameof(destination))
            );
            return;
        }
        if (d % _valuesPerPack == 0)
        {
            // Rows of whole 16-byte packs start on 16-byte boundaries (buffers are 256-byte aligned): move packs.
            _gatherPacks ??= Load<ArrayView<UInt4>, ArrayView<int>, ArrayView<float>, ArrayView<UInt4>>(
                PackedRowKernelBodies.GatherRows<CudaStrictFloat, TRow>,
                PackedRowKernelBodies.GatherRows<ManagedStrictFloat, TRow>
            );
            _gatherPacks(
                total / _valuesPerPack,
                Words(source, nameof(source)).Cast<UInt4>(),
                sourceRowOffset,
                map,
                scales,
                hasScale,
                d / _valuesPerPack,
                Words(destination, nameof(destination)).Cast<UInt4>()
            );
            return;
        }
        _gather ??= Load<ArrayView<TElement>, ArrayView<int>, ArrayView<float>, ArrayView<TElement>>(
            RowKernelBodies.GatherRows<CudaStrictFloat, TElement, TRow>,
            RowKernelBodies.GatherRows<ManagedStrictFloat, TElement, TRow>
        );
        _gather(
            total,
            Elements(source, nameof(source)),
            sourceRowOffset,
            map,
            scales,
            hasScale,
            d,
            Elements(destination, nameof(destination))
        );
    }

    /// <inheritdoc />
    /// <remarks>
    /// Rows of whole tiles go token by token, each token row read once (<see cref="TokenScatterKernelBodies"/>); other
    /// widths are computed as the gather.
    /// </remarks>
    public override void ScatterTokenRows(
        Tensor source,
        int sourceRowOffset,
        Tensor rowToken,
        Tensor entryRow,
        int topK,
        Tensor? scale,
        Tensor destination
    )
    {
        int perWord = _valuesPerPack / 4;
        int d = destination.RowLength,
            words = d / perWord;
        if (d % (perWord * TiledRowKernelBodies.TileWords) != 0 || destination.DType != source.DType)
        {
            GatherRows(source, sourceRowOffset, rowToken, scale, destination);
            return;
        }
        int rows = rowToken.ElementCount,
            tokens = entryRow.ElementCount / Math.Max(1, topK);
        ArrayView<uint> to = Words(destination, nameof(destination));
        ArrayView<int> tokenOf = Ints(rowToken, nameof(rowToken));
        // Rows no token lands in exist only when there are more rows than (token, slot) entries.
        if (rows > tokens * topK && rows > 0)
        {
            _clearTokenless ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<int>, int, ArrayView<uint>>(
                TokenScatterKernelBodies.ClearTokenlessRowsTiled
            );
            _clearTokenless(rows * (words / 4), tokenOf, words, to);
        }
        if (tokens == 0 || topK == 0)
            return;
        ArrayView<int> rowOfEntry = Ints(entryRow, nameof(entryRow));
        _scatter ??= _accelerator.LoadAutoGroupedStreamKernel<
            Index1D,
            ArrayView<uint>,
            int,
            ArrayView<int>,
            int,
            ArrayView<float>,
            int,
            int,
            ArrayView<uint>
        >(
            _cuda
                ? TokenScatterKernelBodies.ScatterTokensTiled<CudaStrictFloat, TRow>
                : TokenScatterKernelBodies.ScatterTokensTiled<ManagedStrictFloat, TRow>
        );
        _scatter(
            tokens * (words / 4),
            Words(source, nameof(source)),
            sourceRowOffset,
            rowOfEntry,
            topK,
            scale is null ? rowOfEntry.Cast<float>() : Floats(scale, nameof(scale)),
            scale is null ? 0 : 1,
            words,
            to
        );
    }

    /// <inheritdoc />
    public override void GatherReduce(
        Tensor rows,
        Tensor positions,
        Tensor? scale,
        Tensor? initial,
        Tensor destination,
        int destinationOffset
    )
    {
        int d = destination.RowLength,
            tokens = positions.Rows,
            k = positions.RowLength,
            total = tokens * d;
        if (total == 0)
            return;
        ArrayView<int> slots = Ints(positions, nameof(positions));
        ArrayView<float> scales = scale is null ? slots.Cast<float>() : Floats(scale, nameof(scale));
        int hasScale = scale is null ? 0 : 1,
            hasInitial = initial is null ? 0 : 1;
        int perWord = _valuesPerPack / 4;
        if (_tiledReduce && d % (perWord * TiledRowKernelBodies.TileWords) == 0)
        {
            ArrayView<uint> dst = Words(destination, nameof(destination));
            _reduceTiled ??= LoadReduce<ArrayView<uint>>(
                TiledRowKernelBodies.GatherReduce<CudaStrictFloat, TRow>,
                TiledRowKernelBodies.GatherReduce<ManagedStrictFloat, TRow>
            );
            _reduceTiled(
                total / _valuesPerPack,
                Words(rows, nameof(rows)),
                slots,
                k,
                scales,
                hasScale,
                initial is null ? dst : Words(initial, nameof(initial)),
                hasInitial,
                d / perWord,
                dst,
                destinationOffset
            );
            return;
        }
        if (_packedReduce && d % _valuesPerPack == 0)
        {
            ArrayView<UInt4> dst = Words(destination, nameof(destination)).Cast<UInt4>();
            _reducePacks ??= LoadReduce<ArrayView<UInt4>>(
                PackedRowKernelBodies.GatherReduce<CudaStrictFloat, TRow>,
                PackedRowKernelBodies.GatherReduce<ManagedStrictFloat, TRow>
            );
            _reducePacks(
                total / _valuesPerPack,
                Words(rows, nameof(rows)).Cast<UInt4>(),
                slots,
                k,
                scales,
                hasScale,
                initial is null ? dst : Words(initial, nameof(initial)).Cast<UInt4>(),
                hasInitial,
                d / _valuesPerPack,
                dst,
                destinationOffset
            );
            return;
        }
        ArrayView<TElement> to = Elements(destination, nameof(destination));
        _reduce ??= LoadReduce<ArrayView<TElement>>(
            RowKernelBodies.GatherReduce<CudaStrictFloat, TElement, TRow>,
            RowKernelBodies.GatherReduce<ManagedStrictFloat, TElement, TRow>
        );
        _reduce(
            total,
            Elements(rows, nameof(rows)),
            slots,
            k,
            scales,
            hasScale,
            initial is null ? to : Elements(initial, nameof(initial)),
            hasInitial,
            d,
            to,
            destinationOffset
        );
    }

    /// <inheritdoc />
    public override void RowDots(
        Tensor a,
        Tensor aRow,
        Tensor b,
        int bRowOffset,
        int entriesPerBRow,
        Tensor result,
        int resultOffset
    )
    {
        int m = aRow.ElementCount;
        if (m == 0)
            return;
        // Groups of RowDotsKernelBodies.Tile rows (coalesced loads, same sums as one thread per row); the CPU
        // accelerator, whose barriers cost more than the arithmetic, gets its largest group up to that.
        int group = Math.Min(RowDotsKernelBodies.Tile, _accelerator.MaxNumThreadsPerGroup);
        _rowDots ??= _accelerator.LoadStreamKernel<
            ArrayView<TElement>,
            ArrayView<int>,
            ArrayView<TElement>,
            int,
            int,
            int,
            int,
            ArrayView<float>,
            int
        >(RowDotsKernelBodies.RowDotsTiled<TElement, TRow>);
        _rowDots(
            new KernelConfig((m + group - 1) / group, group),
            Elements(a, nameof(a)),
            Ints(aRow, nameof(aRow)),
            Elements(b, nameof(b)),
            bRowOffset,
            entriesPerBRow,
            a.RowLength,
            m,
            Floats(result, nameof(result)),
            resultOffset
        );
    }

    /// <inheritdoc />
    public override void SumInRankOrder(Tensor gathered, int ranks, Tensor values)
    {
        int n = values.ElementCount;
        if (n == 0)
            return;
        _sumRanks ??= _accelerator.LoadAutoGroupedStreamKernel<
            Index1D,
            ArrayView<TElement>,
            int,
            int,
            ArrayView<TElement>
        >(RowKernelBodies.SumRanks<TElement, TRow>);
        _sumRanks(n, Elements(gathered, nameof(gathered)), n, ranks, Elements(values, nameof(values)));
    }

    /// <summary>
    /// A gather kernel in the instantiation that suits the accelerator (see <see cref="IStrictFloat"/>).
    /// </summary>
    private Action<Index1D, TSource, int, TMap, TScale, int, int, TDestination> Load<
        TSource,
        TMap,
        TScale,
        TDestination
    >(
        Action<Index1D, TSource, int, TMap, TScale, int, int, TDestination> cuda,
        Action<Index1D, TSource, int, TMap, TScale, int, int, TDestination> managed
    )
        where TSource : struct
        where TMap : struct
        where TScale : struct
        where TDestination : struct => _accelerator.LoadAutoGroupedStreamKernel(_cuda ? cuda : managed);

    /// <summary>A gather-reduce kernel over views of <typeparamref name="TView"/>, as <see cref="Load"/>.</summary>
    private Action<
        Index1D,
        TView,
        ArrayView<int>,
        int,
        ArrayView<float>,
        int,
        TView,
        int,
        int,
        TView,
        int
    > LoadReduce<TView>(
        Action<Index1D, TView, ArrayView<int>, int, ArrayView<float>, int, TView, int, int, TView, int> cuda,
        Action<Index1D, TView, ArrayView<int>, int, ArrayView<float>, int, TView, int, int, TView, int> managed
    )
        where TView : struct => _accelerator.LoadAutoGroupedStreamKernel(_cuda ? cuda : managed);

    /// <summary>A tensor of this row type as its values.</summary>
    private ArrayView<TElement> Elements(Tensor t, string name) => Typed<TElement>(t, _dtype, name);

    /// <summary>A tensor of this row type as 32-bit words (whole words: the callers check the row length).</summary>
    private ArrayView<uint> Words(Tensor t, string name)
    {
        IlgpuDeviceBuffer buffer = _buffer(t, name);
        if (t.DType != _dtype)
            throw new ArgumentException($"{name} must be {_dtype}; got {t}", name);
        return buffer.View<uint>(t.ByteCount / sizeof(uint));
    }

    private ArrayView<float> Floats(Tensor t, string name) => Typed<float>(t, DType.Float32, name);

    private ArrayView<int> Ints(Tensor t, string name) => Typed<int>(t, DType.Int32, name);

    private ArrayView<T> Typed<T>(Tensor t, DType dtype, string name)
        where T : unmanaged
    {
        IlgpuDeviceBuffer buffer = _buffer(t, name);
        if (t.DType != dtype)
            throw new ArgumentException($"{name} must be {dtype}; got {t}", name);
        return buffer.View<T>(t.ElementCount);
    }
}
