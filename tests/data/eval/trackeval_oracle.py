"""Run TrackEval 1.3.0 (YouTubeVIS) on a gt dict + results list; prints json of class-avg/pooled summaries."""
import json, os, sys, tempfile, contextlib, io, copy
sys.path.insert(0, '/tmp/oracle_pkgs')
import numpy as np
from pycocotools import mask as mu
import trackeval

def to_uncompressed(rle):
    m = mu.decode({'size': rle['size'], 'counts': rle['counts'].encode() if isinstance(rle['counts'], str) else rle['counts']})
    flat = m.flatten(order='F')
    runs = []
    cur = 0; n = 0
    for v in flat:
        if v == cur: n += 1
        else:
            runs.append(n); n = 1; cur = v
    runs.append(n)
    return {'size': rle['size'], 'counts': runs}

def run(gt, results, thr):
    gt = copy.deepcopy(gt)
    vids = {v['id']: v for v in gt['videos']}
    for a in gt['annotations']:
        v = vids[a['video_id']]
        a['height'] = v['height']; a['width'] = v['width']
        a['segmentations'] = [to_uncompressed(s) if s else s for s in a['segmentations']]
    res = []
    for r in results:
        if r['score'] < thr: continue
        segs = []
        for s in r['segmentations']:
            if s is None or mu.area({'size': s['size'], 'counts': s['counts'].encode()}) == 0: segs.append(None)
            else: segs.append(s)
        res.append(dict(r, segmentations=segs))
    d = tempfile.mkdtemp()
    os.makedirs(f'{d}/gt/youtube_vis_x'); os.makedirs(f'{d}/tr/youtube_vis_x/trk/data')
    json.dump(gt, open(f'{d}/gt/youtube_vis_x/gt.json', 'w'))
    json.dump(res, open(f'{d}/tr/youtube_vis_x/trk/data/r.json', 'w'))
    ecfg = trackeval.Evaluator.get_default_eval_config()
    ecfg.update(USE_PARALLEL=False, PRINT_RESULTS=False, PRINT_ONLY_COMBINED=True, PRINT_CONFIG=False, TIME_PROGRESS=False,
                OUTPUT_SUMMARY=False, OUTPUT_DETAILED=False, PLOT_CURVES=False, OUTPUT_EMPTY_CLASSES=False, DISPLAY_LESS_PROGRESS=True)
    dcfg = trackeval.datasets.YouTubeVIS.get_default_dataset_config()
    dcfg.update(GT_FOLDER=f'{d}/gt/', TRACKERS_FOLDER=f'{d}/tr/', SPLIT_TO_EVAL='x', PRINT_CONFIG=False, OUTPUT_FOLDER=f'{d}/out')
    ev = trackeval.Evaluator(ecfg)
    with contextlib.redirect_stdout(io.StringIO()):
        out, _ = ev.evaluate([trackeval.datasets.YouTubeVIS(dcfg)], [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR({'PRINT_CONFIG': False}), trackeval.metrics.Identity({'PRINT_CONFIG': False})])
    comb = out['YouTubeVIS']['trk']['COMBINED_SEQ']
    ret = {}
    for key, name in (('cls_comb_cls_av', 'class_avg'), ('cls_comb_det_av', 'pooled')):
        r = comb[key]; s = {}
        for f in ['HOTA', 'DetA', 'AssA', 'DetRe', 'DetPr', 'AssRe', 'AssPr', 'LocA', 'OWTA']:
            s[f] = float(np.mean(r['HOTA'][f]))
        for f in ['HOTA(0)', 'LocA(0)', 'HOTALocA(0)']:
            s[f] = float(r['HOTA'][f])
        for f in ['MOTA', 'MOTP', 'MODA', 'CLR_Re', 'CLR_Pr', 'MTR', 'PTR', 'MLR', 'sMOTA', 'CLR_TP', 'CLR_FN', 'CLR_FP', 'IDSW', 'MT', 'PT', 'ML', 'Frag']:
            s[f] = float(r['CLEAR'][f])
        for f in ['IDF1', 'IDR', 'IDP', 'IDTP', 'IDFN', 'IDFP']:
            s[f] = float(r['Identity'][f])
        ret[name] = s
    return ret

if __name__ == '__main__':
    gt = json.load(open(sys.argv[1])); res = json.load(open(sys.argv[2])); thr = float(sys.argv[3])
    json.dump(run(gt, res, thr), sys.stdout)
