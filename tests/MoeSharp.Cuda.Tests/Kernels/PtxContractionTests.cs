using System.Reflection;
using System.Text.RegularExpressions;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using MoeSharp.Cuda.Kernels;

namespace MoeSharp.Cuda.Tests.Kernels;

/// <summary>
/// The FMA question, checked without a GPU: ILGPU's PTX backend compiles the kernels offline, and the PTX of the
/// ordered reduction and the scaled gather has only <c>mul.rn.f32</c> / <c>add.rn.f32</c> float arithmetic, which
/// ptxas never contracts, while a plain C# <c>a * b + c</c> gives contractable <c>mul.f32</c> + <c>add.f32</c>.
/// </summary>
public class PtxContractionTests
{
    private static string Ptx(string kernelName, Type type, params Type[] typeArguments)
    {
        using var context = Context.Create(builder => builder.Cuda().EnableAlgorithms().Optimize(OptimizationLevel.O2));
        using var backend = new PTXBackend(context, new CudaCapabilityContext(CudaArchitecture.SM_90), CudaArchitecture.SM_90, CudaInstructionSet.ISA_80, null);
        MethodInfo method = type.GetMethod(kernelName, BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static)!;
        if (typeArguments.Length > 0) method = method.MakeGenericMethod(typeArguments);
        var kernel = (PTXCompiledKernel)backend.Compile(EntryPointDescription.FromImplicitlyGroupedKernel(method), default);
        return kernel.PTXAssembly;
    }

    private static string[] FloatArithmetic(string ptx) =>
        Regex.Matches(ptx, @"\b(mul|add|sub|fma|mad)(\.[a-z]+)*\.f32\b").Select(m => m.Value).Distinct().Order().ToArray();

    [Theory]
    [InlineData(nameof(DispatchKernelBodies.GatherReduce))]
    [InlineData(nameof(DispatchKernelBodies.GatherRows))]
    [InlineData(nameof(DispatchKernelBodies.GatherRows4))]
    public void StrictKernels_EmitOnlyRoundedMulAndAdd(string kernel)
    {
        string[] ops = FloatArithmetic(Ptx(kernel, typeof(DispatchKernelBodies), typeof(PtxStrictFloat)));
        Assert.NotEmpty(ops);
        Assert.True(ops.All(op => op.Contains(".rn.")), string.Join(", ", ops));
    }

    [Theory]
    [InlineData(nameof(BFloat16KernelBodies.GatherReduce8))]
    [InlineData(nameof(BFloat16KernelBodies.GatherReduce1))]
    [InlineData(nameof(BFloat16KernelBodies.GatherRows8))]
    [InlineData(nameof(BFloat16KernelBodies.GatherRows1))]
    [InlineData(nameof(BFloat16KernelBodies.GatherRowsTiled))]
    [InlineData(nameof(BFloat16KernelBodies.GatherReduceTiled))]
    public void StrictBFloat16Kernels_EmitOnlyRoundedMulAndAdd(string kernel)
    {
        string[] ops = FloatArithmetic(Ptx(kernel, typeof(BFloat16KernelBodies), typeof(PtxStrictFloat)));
        Assert.NotEmpty(ops);
        Assert.True(ops.All(op => op.Contains(".rn.")), string.Join(", ", ops));
    }

    [Fact]
    public void PlainCSharp_EmitsContractableMulAndAdd()
    {
        // The evidence that the inline PTX is needed: ILGPU 1.5.3 emits mul.f32 / add.f32 without a rounding modifier.
        string[] ops = FloatArithmetic(Ptx(nameof(PlainMultiplyAdd), typeof(PtxContractionTests)));
        Assert.Contains("mul.f32", ops);
        Assert.Contains("add.f32", ops);
    }

    /// <summary>A kernel written the naive way: <c>c = c + a · b</c>.</summary>
    internal static void PlainMultiplyAdd(Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c) => c[i] = c[i] + a[i] * b[i];
}
